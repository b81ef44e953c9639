#!/usr/bin/env bash
# test-binary: none
# tests/lint.sh - cppcheck and clang-tidy (make lint) stay quiet.
set -u
cd "$(dirname "$0")/.." || exit 1
source tests/lib.sh
if ! command -v cppcheck >/dev/null || ! command -v clang-tidy >/dev/null; then
	echo "# SKIP: cppcheck or clang-tidy not installed"
	finish
	exit
fi
out=$(make -s lint 2>&1)
if [[ $? -eq 0 ]]; then ok "make lint: cppcheck and clang-tidy report nothing"
else not_ok "make lint" "$(grep -E 'error|warning' <<<"$out" | grep -v 'warnings generated' | head -5 | tr '\n' ' ')"; fi
finish

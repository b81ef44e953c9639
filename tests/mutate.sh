#!/usr/bin/env bash
# tests/mutate.sh - mutation testing: does the suite notice when smserve.c
# breaks one of its promises? Run on demand, not by test.sh or CI.
#
#   bash tests/mutate.sh              every mutation in tests/mutations.txt
#   bash tests/mutate.sh ID...        only these
#   bash tests/mutate.sh --check      only check that each mutation's code
#                                     fragments occur exactly once in smserve.c
#   bash tests/mutate.sh --full ...   run each test script to its end, rather
#                                     than stop it at its first failed check
#   bash tests/mutate.sh --no-baseline ...
#
# tests/mutations.txt lists the mutations: an id, the claim it breaks, the
# test scripts expected to catch it, and exact code fragments with their
# replacements. For each one this copies the repository's tracked files (as
# they are in the working tree) to a scratch directory, once, puts the
# mutated smserve.c there (the real one is never touched), builds the plain
# (not sanitizer) binary each named script declares on its "# test-binary:"
# line (faulty when it has none), and runs the scripts one after another:
#   caught       a script failed (its first failed check is shown);
#   SURVIVED     every script passed: a claim no test holds;
#   build broke  the mutated file does not compile: a bad mutation;
#   n/a          a fragment is not in smserve.c exactly once (moved or
#                changed since the list was written): fix the list.
# Before the mutations, the scripts run once on the unchanged code (the
# baseline), since a script that fails anyway catches nothing. Mutations run
# one at a time (the machine may be small and shared), each script under a
# 300 s limit. Prints a table at the end; exits non-zero unless every
# mutation was caught.
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
LIST=tests/mutations.txt
SCRIPT_LIMIT_S=300

check_only=0 full=0 baseline=1 only=()
for a in "$@"; do
	case $a in
	--check) check_only=1 ;;
	--full) full=1 ;;
	--no-baseline) baseline=0 ;;
	-h | --help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	-*) echo "mutate.sh: unknown option $a" >&2; exit 2 ;;
	*) only+=("$a") ;;
	esac
done

# ---- the list ----

ids=() claims=() tests=() npairs=()
declare -A finds=() replaces=()

# add_mutation: files the block read so far (the globals cur_*).
add_mutation() {
	[[ -z $cur_id ]] && return
	local m=${#ids[@]}
	ids+=("$cur_id") claims+=("$cur_claim") tests+=("$cur_tests") npairs+=("$cur_n")
	local k
	for ((k = 0; k < cur_n; k++)); do
		finds[$m,$k]=${cur_find[$k]}
		replaces[$m,$k]=${cur_replace[$k]}
	done
}

read_list() {
	local line key value lineno=0
	cur_id= cur_claim= cur_tests= cur_n=0 cur_find=() cur_replace=()
	while IFS= read -r line || [[ -n $line ]]; do
		lineno=$((lineno + 1))
		[[ $line == \#* ]] && continue
		if [[ -z ${line//[[:space:]]/} ]]; then
			add_mutation
			cur_id= cur_claim= cur_tests= cur_n=0 cur_find=() cur_replace=()
			continue
		fi
		if [[ ! $line =~ ^([a-z]+):[[:space:]]*(.*)$ ]]; then
			echo "$LIST:$lineno: expected 'key: value'" >&2
			exit 2
		fi
		key=${BASH_REMATCH[1]} value=${BASH_REMATCH[2]}
		value=${value%"${value##*[![:space:]]}"}   # trailing blanks are not code
		case $key in
		id) cur_id=$value ;;
		claim) cur_claim=$value ;;
		tests) cur_tests=$value ;;
		find) cur_find[cur_n]=$value ;;
		replace)
			if [[ -z ${cur_find[cur_n]+set} ]]; then
				echo "$LIST:$lineno: replace without a find" >&2
				exit 2
			fi
			cur_replace[cur_n]=$value
			cur_n=$((cur_n + 1)) ;;
		*) echo "$LIST:$lineno: unknown key '$key'" >&2; exit 2 ;;
		esac
	done <"$LIST"
	add_mutation
}

# list_problem M: why mutation M cannot be run as written, or nothing.
list_problem() {
	local m=$1 t k
	[[ -n ${claims[m]} && -n ${tests[m]} && ${npairs[m]} -gt 0 ]] ||
		{ echo "needs a claim, tests and at least one find/replace"; return; }
	for t in ${tests[m]}; do
		[[ -f tests/$t.sh ]] || { echo "no tests/$t.sh"; return; }
	done
	for ((k = 0; k < npairs[m]; k++)); do
		[[ ${finds[$m,$k]} != "${replaces[$m,$k]}" ]] || { echo "find $((k + 1)) equals its replacement"; return; }
	done
}

# mutate M IN OUT: writes IN with mutation M applied to OUT; fails, saying
# which fragment, unless each occurs exactly once (in the text as mutated so
# far, pairs being applied in order). Python, not bash's ${text/...}, which
# takes seconds on a 100 kB file.
mutate() {
	local m=$1 k args=()
	for ((k = 0; k < npairs[m]; k++)); do args+=("${finds[$m,$k]}" "${replaces[$m,$k]}"); done
	/usr/bin/python3 - "$2" "$3" "${args[@]}" <<-'EOF'
		import sys
		src, dst, pairs = sys.argv[1], sys.argv[2], sys.argv[3:]
		text = open(src, encoding="utf-8").read()
		for k in range(0, len(pairs), 2):
		    find, replace = pairs[k], pairs[k + 1]
		    n = text.count(find)
		    if n != 1:
		        print("fragment %d %s: %s" % (k // 2 + 1, "not found" if n == 0 else "occurs %d times" % n, find))
		        sys.exit(1)
		    text = text.replace(find, replace)
		open(dst, "w", encoding="utf-8").write(text)
	EOF
}

read_list
declare -A seen=()
for m in "${!ids[@]}"; do
	[[ -n ${seen[${ids[m]}]:-} ]] && { echo "$LIST: id ${ids[m]} is used twice" >&2; exit 2; }
	seen[${ids[m]}]=1
done
for id in "${only[@]}"; do
	[[ -n ${seen[$id]:-} ]] || { echo "mutate.sh: no mutation '$id' in $LIST" >&2; exit 2; }
done
selected() {
	local id
	[[ ${#only[@]} -eq 0 ]] && return 0
	for id in "${only[@]}"; do [[ $id == "$1" ]] && return 0; done
	return 1
}

# ---- --check: the fragments alone ----

if ((check_only)); then
	bad=0 n=0
	for m in "${!ids[@]}"; do
		selected "${ids[m]}" || continue
		n=$((n + 1))
		why=$(list_problem "$m")
		[[ -z $why ]] && why=$(mutate "$m" smserve.c /dev/null)
		if [[ -n $why ]]; then
			printf '%-28s not applicable: %s\n' "${ids[m]}" "$why"
			bad=$((bad + 1))
		fi
	done
	echo "$n mutations, $((n - bad)) applicable, $bad not applicable"
	[[ $bad -eq 0 ]]
	exit
fi

# ---- running ----

WORK=$(mktemp -d /tmp/smserve-mutate.XXXXXX)
TREE=$WORK/tree
mkdir -p "$TREE"
git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$TREE" || exit 1
cp smserve.c "$WORK/smserve.c.orig"
echo "# scratch copy: $TREE"

# binary_of NAME: the plug-in a test script runs against ("none": no server).
binary_of() {
	local b
	b=$(head -n 10 "tests/$1.sh" | sed -n 's/^# test-binary: *\([a-z]*\).*/\1/p' | head -n 1)
	echo "${b:-faulty}"
}

# build TESTS...: builds in the scratch tree what the scripts need.
build() {
	local t b targets=()
	for t in "$@"; do
		b=$(binary_of "$t")
		[[ $b != none ]] && targets+=("build/smserve-$b")
	done
	[[ ${#targets[@]} -eq 0 ]] && return 0
	make -s -C "$TREE" "${targets[@]}" >"$WORK/build.log" 2>&1
}

# run_script NAME LOG: runs one test script in the scratch tree, in its own
# process group so that it and every server it started can be stopped
# together: at its first failed check (unless --full) or after
# SCRIPT_LIMIT_S. Returns 0 when it passed.
run_script() {
	local t=$1 log=$2 b pid rc start=$SECONDS stopped= env=()
	b=$(binary_of "$t")
	[[ $b != none ]] && env+=("SMSERVE=./build/smserve-$b")
	rm -rf "$WORK/tmp"
	mkdir -p "$WORK/tmp"
	: >"$log"                         # (before the poll below looks at it)
	(cd "$TREE" && exec setsid env "${env[@]}" TEST_TMP="$WORK/tmp" bash "tests/$t.sh") >"$log" 2>&1 &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		if ((!full)) && grep -q '^not ok' "$log"; then
			stopped="stopped at its first failed check"
		elif ((SECONDS - start > SCRIPT_LIMIT_S)); then
			stopped="stopped after $SCRIPT_LIMIT_S s"
			echo "not ok - did not finish within $SCRIPT_LIMIT_S s" >>"$log"
		fi
		if [[ -n $stopped ]]; then
			kill -TERM -- "-$pid" 2>/dev/null
			sleep 1
			kill -KILL -- "-$pid" 2>/dev/null
			break
		fi
		sleep 0.5
	done
	wait "$pid" 2>/dev/null
	rc=$?
	[[ -n $stopped ]] && echo "# mutate.sh: $stopped" >>"$log"
	kill -KILL -- "-$pid" 2>/dev/null   # anything the script left running
	rm -rf "$WORK/tmp"
	[[ $rc -eq 0 && -z $stopped ]]
}

# first_failure LOG: the first failed check of a script's log, shortened.
first_failure() {
	local line
	line=$(grep -m 1 '^not ok' "$1")
	[[ -z $line ]] && line="exit status non-zero: $(tail -n 1 "$1")"
	line=${line#not ok - }
	echo "${line:0:110}"
}

if ((baseline)); then
	declare -A needed=()
	for m in "${!ids[@]}"; do
		selected "${ids[m]}" || continue
		[[ -z $(list_problem "$m") ]] || continue
		for t in ${tests[m]}; do needed[$t]=1; done
	done
	echo "# baseline: ${!needed[*]} on the unchanged code"
	if ! build "${!needed[@]}"; then
		echo "mutate.sh: the unchanged code does not build:" >&2
		cat "$WORK/build.log" >&2
		exit 1
	fi
	for t in "${!needed[@]}"; do
		start=$SECONDS
		if ! run_script "$t" "$WORK/baseline-$t.log"; then
			echo "mutate.sh: tests/$t.sh fails on the unchanged code ($(first_failure "$WORK/baseline-$t.log"));" >&2
			echo "a mutation it catches would prove nothing. Log: $WORK/baseline-$t.log" >&2
			exit 1
		fi
		echo "# baseline $t: passed ($((SECONDS - start)) s)"
	done
fi

results=() caught=0 others=0 total_start=$SECONDS
for m in "${!ids[@]}"; do
	id=${ids[m]}
	selected "$id" || continue
	start=$SECONDS detail= result=
	why=$(list_problem "$m")
	[[ -z $why ]] && why=$(mutate "$m" "$WORK/smserve.c.orig" "$TREE/smserve.c")
	if [[ -n $why ]]; then
		result="n/a" detail=$why
	elif ! build ${tests[m]}; then
		result="build broke" detail=$(grep -m 1 'error' "$WORK/build.log")
		cp "$WORK/build.log" "$WORK/$id.build.log"
	else
		result=SURVIVED
		for t in ${tests[m]}; do
			if ! run_script "$t" "$WORK/$id.$t.log"; then
				result=caught detail="$t: $(first_failure "$WORK/$id.$t.log")"
				break
			fi
		done
	fi
	[[ $result == caught ]] && caught=$((caught + 1)) || others=$((others + 1))
	line=$(printf '%-28s %-11s %4d s  %-14s %s' "$id" "$result" $((SECONDS - start)) "${tests[m]// /,}" "${claims[m]}")
	results+=("$line" "${detail:+$(printf '%-28s %s' '' "$detail")}")
	printf '%s\n' "$line"
	[[ -n $detail ]] && printf '%-28s %s\n' '' "$detail"
done
cp "$WORK/smserve.c.orig" "$TREE/smserve.c"

echo
echo "# results (logs in $WORK)"
printf '%-28s %-11s %6s  %-14s %s\n' id result time tests claim
for line in "${results[@]}"; do [[ -n $line ]] && printf '%s\n' "$line"; done
echo "$caught caught, $others not ($((SECONDS - total_start)) s)"
rm -rf "$TREE"
[[ $others -eq 0 ]]

#!/usr/bin/env bash
# bench/chart.sh RESULTS.md > chart.svg - draws the req/s table of
# bench/run.sh as horizontal bars, one group per scenario, on a log scale
# (the peers differ by orders of magnitude). Plain SVG written by awk.
set -u
awk -F'|' '
function trim(s) { gsub(/^ +| +$/, "", s); return s }
$2 ~ /^ (ping|echo|model|batch|batchjson|c1000|newconn|ping1|echo1) $/ {
	n++; sc[n] = trim($2); sv[n] = trim($3); r[n] = trim($4) + 0
	if (r[n] > max) max = r[n]
}
END {
	left = 170; width = 560; bar = 16; gap = 4; y = 40
	color["echo"] = "#d9480f"; color["model"] = "#d9480f"; color["nginx"] = "#495057"; color["nginx1"] = "#868e96"
	color["secho"] = "#f08c00"; color["smodel"] = "#f08c00"
	label["ping"] = "GET /ping, 32 conns"; label["echo"] = "echo /invocations, 32 conns"
	label["model"] = "one record, model"; label["batch"] = "1 MB CSV batch (req/s)"; label["batchjson"] = "1 MB batch, JSON answers"
	label["c1000"] = "/ping, 1000 conns"; label["newconn"] = "/ping, new conn each"
	label["ping1"] = "GET /ping, 32 conns, wrk -t1"; label["echo1"] = "echo /invocations, wrk -t1"
	h = 60 + n * (bar + gap) + 24 * 8
	top = log(max * 1.5) / log(10)
	printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"800\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n", h
	printf "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
	printf "<text x=\"10\" y=\"20\" font-size=\"15\" font-weight=\"bold\">smserve vs peers: requests per second (log scale; orange = smserve, light orange = its static build)</text>\n"
	for (i = 1; i <= n; i++) {
		if (sc[i] != last) {
			y += 20
			printf "<text x=\"10\" y=\"%d\" font-weight=\"bold\">%s</text>\n", y, label[sc[i]]
			y += 6; last = sc[i]
		}
		w = (r[i] > 1) ? width * log(r[i]) / log(10) / top : 1
		c = (sv[i] in color) ? color[sv[i]] : "#74c0fc"
		printf "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n", left - 6, y + bar - 4, sv[i]
		printf "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>\n", left, y, w, bar, c
		printf "<text x=\"%.1f\" y=\"%d\">%s</text>\n", left + w + 6, y + bar - 4, r[i]
		y += bar + gap
	}
	printf "</svg>\n"
}' "$1"

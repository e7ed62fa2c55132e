#!/bin/sh
# Runs every tests/*.sh (POSIX sh, so any guest image has what it needs) and writes a JUnit XML report to $1.
# Exits 1 when a test failed.
out=${1:-junit.xml}
cd "$(dirname "$0")" || exit 2
total=0 failed=0 cases=''
for t in tests/*.sh; do
  name=$(basename "$t" .sh)
  total=$((total + 1))
  if log=$(sh "$t" 2>&1); then
    cases="$cases<testcase classname=\"suite\" name=\"$name\"/>"
  else
    failed=$((failed + 1))
    esc=$(printf '%s' "$log" | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g')
    cases="$cases<testcase classname=\"suite\" name=\"$name\"><failure message=\"exit status\">$esc</failure></testcase>"
  fi
done
printf '<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="suite" tests="%d" failures="%d">%s</testsuite>\n' \
  "$total" "$failed" "$cases" > "$out"
echo "$total tests, $failed failed"
[ "$failed" -eq 0 ]

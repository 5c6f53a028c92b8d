#!/bin/sh
# The initramfs's /bin: a link for each of busybox's applets.
. "${0%/*}/lib.sh"

missing=""
# The list names busybox itself too: /bin/busybox is the program.
for applet in $(busybox --list); do
	[ "$applet" = busybox ] || [ "$(readlink "/bin/$applet")" = busybox ] || missing="$missing $applet"
done
check "every applet has its link in /bin" "" "$missing"
check "one link per applet" "$(busybox --list | grep -cv '^busybox$')" "$(find /bin -type l -exec readlink {} \; | grep -c '^busybox$')"
check "/usr/bin leads to /bin" busybox "$(readlink /usr/bin/env)"
check "an applet runs by its link" "applet" "$(/usr/bin/env echo applet)"
finish

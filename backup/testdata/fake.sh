#!/bin/sh
# Fake pause/resume/snapshot commands for the pipeline tests. Every call
# is appended to $FAKE_LOG as one line: ACTION ARGS.
#   fake.sh pause NAME | resume NAME
#   fake.sh create SOURCE SNAPDEV COW   copies SOURCE to SNAPDEV and writes a
#                                       dm-snapshot COW header to COW
#                                       (valid=0 when $FAKE_OVERFLOW is set)
#   fake.sh remove SNAPDEV COW
# $FAKE_BREAK=1 truncates the snapshot copy so that reading it fails;
# $FAKE_SLEEP=ACTION sleeps 60 s in that action (for signal tests).
set -e
action=$1; shift
echo "$action $*" >> "$FAKE_LOG"
if [ "$FAKE_SLEEP" = "$action" ]; then sleep 60; fi
case $action in
create)
	cp --sparse=always "$1" "$2"
	if [ -n "$FAKE_BREAK" ]; then
		# keep the partition table and the superblock, lose the inode tables
		truncate -s 1300K "$2"
	fi
	valid=1
	[ -n "$FAKE_OVERFLOW" ] && valid=0
	# magic "SnAp" 0x70416e53, valid, version 1, chunk size 16 sectors (LE)
	printf 'SnAp' > "$3.tmp"
	printf "\\$(printf %o $valid)\\000\\000\\000\\001\\000\\000\\000\\020\\000\\000\\000" >> "$3.tmp"
	mv "$3.tmp" "$3"
	;;
remove)
	rm -f "$1" "$2"
	;;
pause|resume) ;;
*) echo "fake.sh: unknown action $action" >&2; exit 2 ;;
esac

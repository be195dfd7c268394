# test/posix/guest.sh - runs in the test guest (busybox sh, root), started by
# test/posix/run.ts through test/guest/run-guest:
#
#   guest.sh FS TIMEOUT ITEM...
#
# FS is `9p` (run-guest has mounted the share at $EDGE9P_MNT) or `tmpfs` (the
# reference: a fresh tmpfs is mounted there instead). TIMEOUT bounds one .t
# file, in seconds. Each ITEM is a tests/ directory (`chmod`) or one file
# (`chmod/00.t`). pjdfstest (helper and tests, as built by test/posix/setup)
# is in /files/pjdfstest.
#
# Every .t runs in a fresh directory of its own on the file system under test
# (the scripts make their names in the current directory and expect none of
# them to exist), and its TAP output is framed by two marker lines that the
# host reads:
#   @@posix begin DIR/NN.t
#   @@posix end DIR/NN.t STATUS
# The host takes the times itself, as the lines arrive.

FS=$1 TIMEOUT=$2
shift 2
PJD=/files/pjdfstest
MNT=${EDGE9P_MNT:-/mnt}

fail() { echo "@@posix error $*"; exit 1; }
[ -x "$PJD/pjdfstest" ] && [ -d "$PJD/tests" ] || fail "no pjdfstest in $PJD"

case "$FS" in
9p) grep -q " $MNT 9p " /proc/mounts || fail "$MNT is not a 9p mount" ;;
tmpfs) mount -t tmpfs -o mode=0755 posix "$MNT" || fail "cannot mount a tmpfs on $MNT" ;;
*) fail "unknown file system $FS" ;;
esac

# misc.sh names files with `dd ... | openssl md5 | awk '{print $NF}'`, and
# busybox has no openssl. This stand-in answers that one call with md5sum, in
# the form of OpenSSL's output ("MD5(stdin)= HEX"), so the last field is the
# digest; the vendored scripts stay as upstream ships them.
mkdir -p /tmp/posix-bin
cat >/tmp/posix-bin/openssl <<'EOF'
#!/bin/sh
[ "$#" = 1 ] && [ "$1" = md5 ] || { echo "openssl (test shim): only 'openssl md5' is provided" >&2; exit 1; }
echo "MD5(stdin)= $(md5sum | cut -d' ' -f1)"
EOF
chmod 755 /tmp/posix-bin/openssl
export PATH=/tmp/posix-bin:$PATH

# utimensat/06.t and 07.t look the user `nobody` up with id(1); the guest's
# /etc/passwd has only root. Give it Debian's nobody and nogroup (65534),
# the identities the other tests use by number.
grep -q '^nobody:' /etc/passwd || echo 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >>/etc/passwd
grep -q '^nogroup:' /etc/group || echo 'nogroup:x:65534:' >>/etc/group

BASE=$MNT/pjdfstest
mkdir -p "$BASE" || fail "cannot create $BASE"
echo "@@posix fs $(df -PT "$BASE" | tail -n 1 | awk '{ print $2 }') $(uname -r)"

run_one() { # DIR/NN.t
	w=$BASE/$(echo "$1" | tr / _)
	mkdir -p "$w" || { echo "@@posix begin $1"; echo "@@posix end $1 mkdir-failed"; return; }
	echo "@@posix begin $1"
	(cd "$w" && exec timeout "$TIMEOUT" sh "$PJD/tests/$1") 2>&1
	echo "@@posix end $1 $?"
}

for item in "$@"; do
	case "$item" in
	*.t) [ -f "$PJD/tests/$item" ] || fail "no test $item"; run_one "$item" ;;
	*)
		[ -d "$PJD/tests/$item" ] || fail "no test directory $item"
		for t in $(cd "$PJD/tests/$item" && ls *.t | sort); do run_one "$item/$t"; done
		;;
	esac
done
cd /
echo "@@posix done"

#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests (connectors/sql, the ONA
# deployment): installs Debian's postgresql when it is missing, creates a
# cluster in DIR owned by an unprivileged user (the server refuses to run
# as root), starts it on a free loopback port with its socket inside DIR,
# and prints the DSN of an empty database on it.
#
#   dsn=$(.ci/postgres.sh start DIR)   # then: export CASESYNC_TEST_POSTGRES_DSN=$dsn
#   .ci/postgres.sh stop DIR
set -euo pipefail
cmd=${1:?usage: postgres.sh start|stop DIR}
dir=${2:?usage: postgres.sh start|stop DIR}

bindir() {
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
	[ -n "$d" ] && [ -x "$d/initdb" ] && echo "$d"
}

# as runs a command as the cluster's owner: postgres when we are root.
as() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

case "$cmd" in
start)
	if ! bin=$(bindir); then
		echo "postgres.sh: installing postgresql from Debian's packages" >&2
		apt-get update >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql >&2
		bin=$(bindir)
	fi
	mkdir -p "$dir"
	if [ "$(id -u)" = 0 ]; then
		id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
		chown postgres "$dir"
	fi
	as "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
		as "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1
	for attempt in 1 2 3 4 5; do
		port=$((20000 + RANDOM % 20000))
		if as "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
			-o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" start >&2; then
			as "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -q -c "CREATE DATABASE casesync_test" >&2
			echo "postgres://postgres@127.0.0.1:$port/casesync_test?sslmode=disable"
			exit 0
		fi
	done
	echo "postgres.sh: the server did not start; see $dir/server.log" >&2
	exit 1
	;;
stop)
	bin=$(bindir) || exit 0
	[ -d "$dir/data" ] && as "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
	;;
*)
	echo "usage: postgres.sh start|stop DIR" >&2
	exit 2
	;;
esac

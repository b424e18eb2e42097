#!/usr/bin/env bash
# Makes sure the test suite has what it needs: redis-server on PATH. Tests
# use the Redis at TEST_REDIS_URL when it is set and start throwaway
# redis-server processes otherwise; tests that crash or restart Redis always
# start their own. The Console's browser tests need Chromium, and the
# destinations' interop test node and npm; without them they skip, unless CI
# is set. The bench's ingest load (and its smoke test)
# uses wrk when it is on PATH and its own Go load generator otherwise. As
# root on Debian or Ubuntu this installs what is missing; elsewhere it says
# what to do.
#
# With the argument "bench" it checks only what go tool task bench needs:
# redis-server, and wrk when it can be installed. With "short" (go tool
# task test:short, which skips the browser, interop and bench tests) only
# redis-server.
set -euo pipefail

want_chromium=1
want_node=1
want_wrk=1
case "${1:-}" in
  bench) want_chromium=0 ;;
  short) want_chromium=0; want_node=0; want_wrk=0 ;;
esac

as_root_with_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }

if ! command -v redis-server >/dev/null 2>&1; then
  if as_root_with_apt; then
    echo "test-deps: installing redis-server with apt-get" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    echo "test-deps: the tests need redis-server on PATH: apt-get install redis-server, or brew install redis" >&2
    exit 1
  fi
fi

if [ "$want_chromium" = 1 ] && ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 && ! command -v google-chrome >/dev/null 2>&1; then
  if as_root_with_apt; then
    echo "test-deps: installing chromium with apt-get, for the Console's browser tests" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "test-deps: no Chromium on PATH: the Console's browser tests will be skipped (they fail under CI=true)" >&2
  fi
fi

# The destinations' interop test (deploy/e2e TestDestinations) installs npm
# standardwebhooks@1.1.1 in a temporary directory and verifies deliveries
# with it; without node and npm it skips, unless CI is set.
if [ "$want_node" = 1 ] && { ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; }; then
  if as_root_with_apt; then
    echo "test-deps: installing nodejs and npm with apt-get, for the destinations' interop test" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  else
    echo "test-deps: no node or npm on PATH: the destinations' Node interop check will be skipped (it fails under CI=true)" >&2
  fi
fi

# wrk is optional: without it the bench falls back to its Go load generator,
# so a failed install is only reported.
if [ "$want_wrk" = 1 ] && ! command -v wrk >/dev/null 2>&1; then
  if as_root_with_apt; then
    echo "test-deps: installing wrk with apt-get, for the bench's ingest load" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; } ||
      echo "test-deps: could not install wrk: the bench will use its Go load generator" >&2
  else
    echo "test-deps: no wrk on PATH: the bench will use its Go load generator (apt-get install wrk, or brew install wrk)" >&2
  fi
fi

#!/usr/bin/env bash
# Makes sure the test suite has what it needs: redis-server on PATH. Tests
# use the Redis at TEST_REDIS_URL when it is set and start throwaway
# redis-server processes otherwise; tests that crash or restart Redis always
# start their own. The Console's browser tests need Chromium; without it
# they skip, unless CI is set. As root on Debian or Ubuntu this installs
# what is missing; elsewhere it says what to do.
set -euo pipefail

if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test-deps: installing redis-server with apt-get" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    echo "test-deps: the tests need redis-server on PATH: apt-get install redis-server, or brew install redis" >&2
    exit 1
  fi
fi

if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 && ! command -v google-chrome >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test-deps: installing chromium with apt-get, for the Console's browser tests" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "test-deps: no Chromium on PATH: the Console's browser tests will be skipped (they fail under CI=true)" >&2
  fi
fi

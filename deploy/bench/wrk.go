package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The ingest load can come from wrk (https://github.com/wg/wrk, Debian's
// package "wrk", LuaJIT scripting), as in issue 8, instead of the Go
// generator of load.go: wrk costs the two cores less per request, so both
// receivers get more of them.
//
// Each run writes the round's signed corpus to a file, one event after
// another as an 8-digit length and the raw HTTP request (body and its own
// Stripe-Signature), and generates a Lua script that gives each wrk thread
// its own contiguous slice of that file: the threads read their events in
// order and never send one twice. A thread stops sending at its deadline
// (the run's window after its own first request) or when its slice runs
// out, waits for every answer it is owed, prints "quiesced" on stderr and
// stops its event loop; when every thread has, the harness interrupts wrk
// (SIGINT ends its sleep), which prints its summary and this script's
// counts. So no request is in flight when wrk stops, and the 200s counted
// in the script's response() can be held to the stored tasks exactly.

// loadWrk and loadGo are the values of -load.
const (
	loadWrk = "wrk"
	loadGo  = "go"
)

// chooseLoad returns the ingest load generator for -load (wrk, go, or
// empty for wrk when it is on PATH), the path of wrk when it is the one,
// and why it was chosen. It fails when -load wrk is asked for and wrk is
// not on PATH.
func chooseLoad(load string) (gen, path, why string, err error) {
	wrk, lookErr := exec.LookPath("wrk")
	switch load {
	case loadGo:
		return loadGo, "", "-load go", nil
	case loadWrk:
		if lookErr != nil {
			return "", "", "", fmt.Errorf("-load wrk: wrk is not on PATH (apt-get install wrk, or -load go)")
		}
		return loadWrk, wrk, "-load wrk, " + wrk, nil
	case "":
		if lookErr != nil {
			return loadGo, "", "wrk is not on PATH: apt-get install wrk to use it", nil
		}
		return loadWrk, wrk, wrk + " is on PATH (-load go for the Go generator)", nil
	}
	return "", "", "", fmt.Errorf("-load %q: want wrk or go", load)
}

// wrkCorpus is a corpus's events written to a file for wrk's script, in
// corpus order, each as an 8-digit decimal length and the request.
type wrkCorpus struct {
	path string
	off  []int64 // offset of each event's length in the file
}

// writeWrkCorpus writes events [0, n) of c, as signed now, to path. The
// file is rewritten after every re-signing.
func writeWrkCorpus(c *corpus, n int, path string) (*wrkCorpus, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	wc := &wrkCorpus{path: path, off: make([]int64, n)}
	var at int64
	for i := range n {
		wc.off[i] = at
		fmt.Fprintf(w, "%08d", len(c.reqs[i]))
		w.Write(c.reqs[i])
		at += 8 + int64(len(c.reqs[i]))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return nil, err
	}
	return wc, f.Close()
}

// wrkDir returns a directory for the corpus file: /dev/shm when it is
// there, so that no disk writeback shares the cores with a run, else dir.
func wrkDir(dir string) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "stripeq-bench-"); err == nil {
			return d
		}
	}
	return dir
}

// wrkRun is what one wrk run measured, from wrk's own figures and the
// script's counts.
type wrkRun struct {
	requests  int           // responses wrk read
	duration  time.Duration // wrk's own run time, from start to its summary
	p50, p99  time.Duration // wrk's latency percentiles (with its correction)
	sent      int           // events the script handed to wrk
	answered  int           // responses the script saw
	ok        int           // answers 200 with "Received"
	quiesced  int           // threads that stopped with nothing in flight
	exhausted int           // threads whose slice ran out before the deadline
	errors    map[string]int
	cpu       time.Duration // wrk's CPU time (user + system), from its rusage
}

// inflight returns how many events wrk sent whose answer it never read.
func (r wrkRun) inflight() int { return r.sent - r.answered }

// runWrk sends events [from, from+n) of wc to addr over conns connections
// for window, each thread its own slice, and returns what wrk measured.
// The run is bounded by window plus 10 s whatever happens.
func runWrk(ctx context.Context, wrk, dir string, wc *wrkCorpus, addr string, conns int, window time.Duration, from, n int, name string) (wrkRun, error) {
	threads := 2
	if conns < 2 || conns%2 != 0 {
		threads = 1 // wrk gives each thread conns/threads connections
	}
	var blocks []string
	per := n / threads
	for t := range threads {
		count := per
		if t == threads-1 {
			count = n - per*(threads-1)
		}
		if count == 0 {
			return wrkRun{}, fmt.Errorf("wrk: no events for thread %d of %d", t+1, threads)
		}
		blocks = append(blocks, fmt.Sprintf("{%d, %d}", wc.off[from+per*t], count))
	}
	script := filepath.Join(dir, name+".lua")
	prelude := fmt.Sprintf("local corpus_path = %q\nlocal window = %g\nlocal blocks = {%s}\n",
		wc.path, window.Seconds(), strings.Join(blocks, ", "))
	if err := os.WriteFile(script, []byte(prelude+wrkScript), 0o644); err != nil {
		return wrkRun{}, err
	}

	// wrk's -d is whole seconds; the script ends the run earlier.
	limit := int(math.Ceil(window.Seconds())) + 10
	cmd := exec.CommandContext(ctx, wrk, "-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns),
		"-d", strconv.Itoa(limit)+"s", "--timeout", "10s", "-s", script, "http://"+addr+"/webhooks/stripe")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	// Interrupt wrk once every thread has quiesced, or at window + 5 s
	// when one has not (then some answers were never read: see ingest).
	var other []string
	quiesced, seen := make(chan struct{}), 0
	cmd.Stderr = &lineWriter{line: func(l string) {
		if l != "quiesced" {
			other = append(other, l)
		} else if seen++; seen == threads {
			close(quiesced)
		}
	}}
	if err := cmd.Start(); err != nil {
		return wrkRun{}, fmt.Errorf("start wrk: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	bound := time.After(window + 5*time.Second)
	tick := (<-chan time.Time)(nil)
	var waitErr error
wait:
	for {
		select {
		case waitErr = <-exited:
			break wait
		case <-quiesced:
			quiesced = nil
			cmd.Process.Signal(syscall.SIGINT)
			tick = time.Tick(500 * time.Millisecond) // in case wrk had not yet set its handler
		case <-bound:
			bound = nil
			cmd.Process.Signal(syscall.SIGINT)
			tick = time.Tick(500 * time.Millisecond)
		case <-tick:
			cmd.Process.Signal(syscall.SIGINT)
		}
	}
	if waitErr != nil {
		return wrkRun{}, fmt.Errorf("wrk: %v\n%s%s", waitErr, stdout.String(), strings.Join(other, "\n"))
	}
	r, err := parseWrk(stdout.String())
	if err != nil {
		return wrkRun{}, fmt.Errorf("%w\n%s%s", err, stdout.String(), strings.Join(other, "\n"))
	}
	r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	if len(other) > 0 {
		r.errors["wrk: "+errKey(errors.New(strings.Join(other, "; ")))]++
	}
	return r, nil
}

// lineWriter calls line with each line written to it.
type lineWriter struct {
	buf  []byte
	line func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.line(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}

// parseWrk reads the lines the script's done() prints.
func parseWrk(out string) (wrkRun, error) {
	r := wrkRun{errors: map[string]int{}}
	found := false
	for l := range strings.Lines(out) {
		l = strings.TrimSpace(l)
		if rest, ok := strings.CutPrefix(l, "stripeq-wrk-answer "); ok {
			count, answer, _ := strings.Cut(rest, " ")
			n, _ := strconv.Atoi(count)
			r.errors[errKey(errors.New(answer))] += n
			continue
		}
		rest, ok := strings.CutPrefix(l, "stripeq-wrk ")
		if !ok {
			continue
		}
		found = true
		for f := range strings.FieldsSeq(rest) {
			k, v, _ := strings.Cut(f, "=")
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return r, fmt.Errorf("wrk output: %q", f)
			}
			switch k {
			case "requests":
				r.requests = int(n)
			case "duration_us":
				r.duration = time.Duration(n) * time.Microsecond
			case "p50_us":
				r.p50 = time.Duration(n) * time.Microsecond
			case "p99_us":
				r.p99 = time.Duration(n) * time.Microsecond
			case "sent":
				r.sent = int(n)
			case "answered":
				r.answered = int(n)
			case "ok":
				r.ok = int(n)
			case "quiesced":
				r.quiesced = int(n)
			case "exhausted":
				r.exhausted = int(n)
			case "overrun":
				if n > 0 {
					r.errors["sent past the slice after a reconnect"] += int(n)
				}
			default:
				if n > 0 { // connect, read, write, timeout: socket errors
					r.errors["wrk socket errors: "+k] += int(n)
				}
			}
		}
	}
	if !found {
		return r, errors.New("wrk printed no stripeq-wrk line")
	}
	if r.exhausted > 0 {
		r.errors["corpus exhausted: raise -max-rate"] += r.exhausted
	}
	return r, nil
}

// wrkScript is the Lua script wrk runs, after a prelude that sets
// corpus_path, window (seconds) and blocks ({offset, count} of each
// thread's slice of the corpus file).
//
// response() makes wrk hand every answer's headers and body to Lua. That
// did not measurably cost wrk more CPU: 44 µs per request with it, 46
// without (medians of 12 interleaved 2 s runs each, 16 connections, against
// a server answering in 1.5 ms, about 5,700 requests/s), where wrk alone
// sending one static GET costs about 30. It is what lets the run count its
// 200 "Received" answers and know that none is still in flight. Reading
// each event from the file (a new 3.3 KB Lua string) and delay() are most
// of the rest. In the ingest runs on 2 cores this script costs wrk 47–51 µs
// per event, the Go generator 47–84.
const wrkScript = `
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long sec; long nsec; } stripeq_timespec;
int clock_gettime(int clock, stripeq_timespec *ts);
]]
local ts = ffi.new("stripeq_timespec")
local function now()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.sec) + tonumber(ts.nsec) * 1e-9
end

-- setup and done run in wrk's main Lua state; init, delay, request and
-- response in each thread's own.
local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
  thread:set("id", #threads)
end

local file, left, ahead, deadline
function init(args)
  local b = blocks[id]
  file = assert(io.open(corpus_path, "rb"))
  file:setvbuf("full", 1048576)
  file:seek("set", b[1])
  left = b[2]
  sent, answered, ok, overrun, exhausted, quiesced = 0, 0, 0, 0, 0, 0
  answers = {}
end

local function read_event()
  local n = tonumber(file:read(8))
  return file:read(n)
end

-- delay runs before every request a connection sends: 0 until the
-- thread's deadline or the end of its slice, then a long wait that parks
-- the connection. Once nothing is in flight, the thread stops.
function delay()
  local t = now()
  if deadline == nil then deadline = t + window end
  if t < deadline and left > 0 then return 0 end
  if left == 0 and t < deadline then exhausted = 1 end
  if sent == answered and quiesced == 0 then
    quiesced = 1
    io.stderr:write("quiesced\n")
    wrk.thread:stop()
  end
  return 3600000
end

function request()
  if deadline == nil then
    -- wrk checks the request once before the run: read the first event
    -- ahead, and send it first.
    ahead = ahead or read_event()
    return ahead
  end
  sent = sent + 1
  if left == 0 then
    -- Only after a reconnect, which asks for a request without delay().
    overrun = overrun + 1
    return "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
  end
  local r = ahead or read_event()
  ahead = nil
  left = left - 1
  return r
end

function response(status, headers, body)
  answered = answered + 1
  if status == 200 and body:find('"Received"', 1, true) then
    ok = ok + 1
  else
    local k = status .. " " .. body:sub(1, 50):gsub("%s+", " ")
    answers[k] = (answers[k] or 0) + 1
  end
end

function done(summary, latency, requests)
  local c = {sent = 0, answered = 0, ok = 0, overrun = 0, exhausted = 0, quiesced = 0}
  local answers = {}
  for _, t in ipairs(threads) do
    for k in pairs(c) do c[k] = c[k] + t:get(k) end
    for k, v in pairs(t:get("answers")) do answers[k] = (answers[k] or 0) + v end
  end
  local e = summary.errors
  io.write(string.format("stripeq-wrk requests=%d duration_us=%d p50_us=%d p99_us=%d " ..
    "sent=%d answered=%d ok=%d overrun=%d exhausted=%d quiesced=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    c.sent, c.answered, c.ok, c.overrun, c.exhausted, c.quiesced, e.connect, e.read, e.write, e.timeout))
  for k, v in pairs(answers) do io.write("stripeq-wrk-answer ", v, " ", k, "\n") end
end
`

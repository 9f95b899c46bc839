package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"casesync/internal/fakes/primero"
	"casesync/internal/sandbox"
	"casesync/internal/state"
	"casesync/internal/testenv"
)

// engineProc is `engine run` in a child process.
type engineProc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	exited chan error
}

// buildEngine compiles this command into a temporary folder.
func buildEngine(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "engine")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startEngine starts `engine run` and waits for its listening line.
func startEngine(t *testing.T, bin string, env []string, args ...string) *engineProc {
	t.Helper()
	p := &engineProc{cmd: exec.Command(bin, append([]string{"run"}, args...)...), stderr: &bytes.Buffer{}, exited: make(chan error, 1)}
	p.cmd.Env = env
	p.cmd.Stderr = p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), " listening on http://") {
				close(listening)
			}
		}
		p.exited <- p.cmd.Wait()
	}()
	t.Cleanup(func() { p.cmd.Process.Kill() })
	select {
	case <-listening:
	case err := <-p.exited:
		t.Fatalf("engine run exited at start: %v\n%s", err, p.stderr)
	case <-time.After(2 * time.Minute): // a loaded machine, not a slow start, is what this waits out
		t.Fatalf("engine run did not start listening\n%s", p.stderr)
	}
	return p
}

// signal sends sig and waits for the exit.
func (p *engineProc) signal(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case err := <-p.exited:
		return err
	case <-time.After(2 * time.Minute):
		t.Fatalf("engine run did not exit after %v\n%s", sig, p.stderr)
		return nil
	}
}

// waitUntil waits for cond with a deadline; cond reads fakes or the
// daemon's /status, which offer no notification to wait on. The bound is
// generous: it costs time only when the condition never comes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// inboxSpecs copies the example deployment and gives cases_to_oscar the
// inbox Primero's data forwarding posts to.
func inboxSpecs(t *testing.T) string {
	t.Helper()
	dir := copyExampleSpecs(t)
	edit := func(path, old, new string) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte(old)) {
			t.Fatalf("%s no longer holds %q", path, old)
		}
		if err := os.WriteFile(path, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	spec := filepath.Join(dir, "referrals.cue")
	edit(spec, `list.Concat([prim.Secrets, osc.Secrets])`, `list.Concat([prim.Secrets, osc.Secrets, ["INBOX_SECRET"]])`)
	edit(spec, `trigger: cron: "0 * * * *"`, `trigger: {
		cron: "0 0 1 1 *" // yearly: no scheduled run during the test
		inbox: {
			path:   "/hooks/primero/cases"
			secret: {secret: "INBOX_SECRET"}
			header: "x-api-key"
			key:    ".data.record_id"
			fetch: {path: "/api/v2/cases/{$key}", records: "[.data]"}
		}
	}`)
	return dir
}

// Deliveries are posted by eight senders that retry when the connection
// fails, as a relay in front of Primero would. The daemon is SIGKILLed
// while deliveries arrive and are processed, restarted, sent SIGTERM in
// the middle of processing, and started once more to finish. Every
// delivery must be stored once and processed, and every referred case
// must reach OSCaR exactly once.
func TestRun_InboxExactlyOnceAcrossKillAndTerm(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the engine and runs it in child processes")
	}
	bin := buildEngine(t)
	// Three daemons and each retry --not-written log in to Primero within
	// a minute or so: more than its 6 logins a minute, which this test is
	// not about.
	sb, err := sandbox.Start(sandbox.Options{Cases: 1000, Clients: 5, Seed: 7, OSCaRAutoAccept: true, PrimeroLoginThrottle: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	// A few milliseconds per re-fetch keeps processing going while the
	// process is killed.
	sb.Primero.InjectFault(primero.Fault{Method: "GET", Path: "/api/v2/cases/*", Kind: primero.FaultLatency, Latency: 3 * time.Millisecond})

	specs := inboxSpecs(t)
	statePath := filepath.Join(t.TempDir(), "state.db")
	addr, adminAddr := freeAddr(t), freeAddr(t)
	env := os.Environ()
	for _, n := range []string{"PRIMERO_USER", "PRIMERO_PASSWORD", "OSCAR_EMAIL", "OSCAR_PASSWORD", "INBOX_SECRET"} {
		v, _ := sb.Secret(n)
		env = append(env, n+"="+v)
	}
	secret, _ := sb.Secret("INBOX_SECRET")
	args := []string{"--specs", specs, "--state", statePath, "--addr", addr, "--admin-addr", adminAddr, "--log-level", "warn",
		"--base-url", "primero=" + sb.URLs["primero"], "--base-url", "oscar=" + sb.URLs["oscar"]}

	var ids []string
	for _, c := range sb.Primero.Cases() {
		ids = append(ids, c["id"].(string))
	}
	if len(ids) != 1000 {
		t.Fatalf("%d cases seeded", len(ids))
	}
	client := &http.Client{Timeout: 10 * time.Second}
	post := func(i int) (int, error) {
		body := fmt.Sprintf(`{"data": {"record_id": %q, "delivery": %d}}`, ids[i], i)
		req, _ := http.NewRequest("POST", "http://"+addr+"/hooks/primero/cases", strings.NewReader(body))
		req.Header.Set("x-api-key", secret)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	statuses := make([]int, len(ids))
	var answered atomic.Int64
	var senders sync.WaitGroup
	next := atomic.Int64{}
	// The senders' own bound spans two engine starts and a kill: on a
	// loaded machine that alone took over 30 s.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	for range 8 {
		senders.Add(1)
		go func() {
			defer senders.Done()
			// About 400 deliveries a second in all, so the kill lands while
			// they still arrive.
			pace := time.NewTicker(20 * time.Millisecond)
			defer pace.Stop()
			for i := int(next.Add(1) - 1); i < len(ids); i = int(next.Add(1) - 1) {
				<-pace.C
				for ctx.Err() == nil {
					code, err := post(i)
					if err == nil && code != http.StatusServiceUnavailable {
						statuses[i] = code
						answered.Add(1)
						break
					}
					// Refused or cut off while the daemon restarts: send again.
					select {
					case <-ctx.Done():
					case <-time.After(20 * time.Millisecond):
					}
				}
			}
		}()
	}

	// 1: SIGKILL while deliveries arrive and are being processed.
	p := startEngine(t, bin, env, args...)
	waitUntil(t, "300 answered deliveries and OSCaR writes", func() bool {
		return answered.Load() >= 300 && sb.Oscar.Counters().TotalWrites() >= 10
	})
	p.signal(t, syscall.SIGKILL)
	killedAt := answered.Load()

	// 2: restart; SIGTERM in the middle of processing, whether or not
	// deliveries still arrive. (Waiting for the senders first could find
	// the backlog gone on a fast machine, and the writes never to come.)
	p = startEngine(t, bin, env, args...)
	writes := sb.Oscar.Counters().TotalWrites()
	waitUntil(t, "more OSCaR writes", func() bool { return sb.Oscar.Counters().TotalWrites() >= writes+10 })
	if err := p.signal(t, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v (want exit 0)\n%s", err, p.stderr)
	}

	// 3: start again and let it finish.
	p = startEngine(t, bin, env, args...)
	pendingAtStart := inboxPending(t, adminAddr)
	senders.Wait()
	if ctx.Err() != nil {
		t.Fatal("the senders did not finish")
	}
	waitUntil(t, "an empty inbox", func() bool { return inboxPending(t, adminAddr) == 0 })
	// Every delivery again: each is known, none is processed twice.
	for i := range ids {
		if code, err := post(i); err != nil || code != http.StatusOK {
			t.Fatalf("repeated delivery %d: %d %v, want 200 duplicate", i, code, err)
		}
	}
	if n := inboxPending(t, adminAddr); n != 0 {
		t.Errorf("%d pending after repeating every delivery", n)
	}
	if err := p.signal(t, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, p.stderr)
	}

	lost := 0
	for i, code := range statuses {
		switch code {
		case http.StatusAccepted:
		case http.StatusOK:
			lost++ // stored, but the answer was cut off by the kill
		default:
			t.Errorf("delivery %d answered %d", i, code)
		}
	}
	st, err := state.OpenReadOnly(statePath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if items, err := st.InboxPending(context.Background(), "cases_to_oscar", 0); err != nil || len(items) != 0 {
		t.Errorf("state: %d deliveries pending (err %v)", len(items), err)
	}
	fetched := map[string]int{}
	for _, r := range sb.Primero.Requests() {
		if r.Method == "GET" && strings.HasPrefix(r.Path, "/api/v2/cases/") && r.Status == 200 {
			fetched[strings.TrimPrefix(r.Path, "/api/v2/cases/")]++
		}
	}
	twice := 0
	for _, id := range ids {
		switch n := fetched[id]; {
		case n == 0:
			t.Errorf("case %s was never processed", id)
		case n > 1:
			twice++
		}
	}
	// The effect: one OSCaR referral per referred case, no duplicates.
	perCase := func() map[string]int {
		n := map[string]int{}
		for _, r := range sb.Oscar.Referrals() {
			if id, ok := r["external_id"].(string); ok {
				n[id]++
			}
		}
		return n
	}
	caseID := func(id string) string {
		c, _ := sb.Primero.Case(id)
		return c["case_id"].(string)
	}
	failures, err := st.Failures(context.Background(), "cases_to_oscar")
	if err != nil {
		t.Fatal(err)
	}
	// A create whose intent was recorded when SIGKILL landed is
	// write_unconfirmed: OSCaR cannot be searched, so the engine leaves it
	// to a person instead of risking a second referral. The kill may land
	// before the request reached OSCaR (then it has none) or after (then
	// it has one). Play that person: a referral OSCaR does not have is
	// vouched for with retry --not-written, which sends it.
	reasons, resent := map[string]int{}, 0
	have := perCase()
	for _, f := range failures {
		reasons[f.Reason]++
		if f.Reason != "write_unconfirmed" {
			continue
		}
		if have[caseID(f.RecordKey)] > 0 {
			continue
		}
		resent++
		renv := map[string]string{}
		for _, n := range []string{"PRIMERO_USER", "PRIMERO_PASSWORD", "OSCAR_EMAIL", "OSCAR_PASSWORD", "INBOX_SECRET"} {
			renv[n], _ = sb.Secret(n)
		}
		out, errOut, code := runCLI(t, renv, "retry", "--not-written", "--pipeline", "cases_to_oscar", "--record", f.RecordKey,
			"--specs", specs, "--state", statePath, "--base-url", "primero="+sb.URLs["primero"], "--base-url", "oscar="+sb.URLs["oscar"])
		if code != 0 {
			t.Errorf("retry --not-written %s: exit %d\n%s%s", f.RecordKey, code, out, errOut)
		}
	}
	have = perCase()
	for _, id := range testenv.ReferredCases(sb) {
		if n := have[caseID(id)]; n != 1 {
			t.Errorf("case %s has %d OSCaR referrals, want 1", id, n)
		}
	}
	if n := sb.Oscar.Counters().Duplicates.Load(); n != 0 {
		t.Errorf("OSCaR counted %d duplicates", n)
	}
	t.Logf("killed after %d of 1000 answers; %d answers lost to the kill (stored, re-sent, answered 200); %d deliveries pending at the last start; "+
		"%d cases re-fetched after the kill (in flight when killed); retry queue by reason %v; %d unconfirmed creates OSCaR did not have, resent with --not-written",
		killedAt, lost, pendingAtStart, twice, reasons, resent)
}

func inboxPending(t *testing.T, addr string) int {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Pipelines []struct {
			Name         string `json:"name"`
			InboxPending *int   `json:"inbox_pending"`
		} `json:"pipelines"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	for _, p := range st.Pipelines {
		if p.Name == "cases_to_oscar" && p.InboxPending != nil {
			return *p.InboxPending
		}
	}
	t.Fatal("/status has no inbox for cases_to_oscar")
	return 0
}

// TestRun_AdminAddrNeedsATokenOffLoopback: an admin listener other
// machines can reach is refused at start (exit 2) unless it has a bearer
// token; a token named but not set is refused too.
func TestRun_AdminAddrNeedsATokenOffLoopback(t *testing.T) {
	specs := copyExampleSpecs(t)
	env := map[string]string{"PRIMERO_USER": "u", "PRIMERO_PASSWORD": "p", "OSCAR_EMAIL": "e", "OSCAR_PASSWORD": "p"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"wildcard without token", []string{"--admin-addr", "0.0.0.0:0"}, "can be reached from other machines: give the admin endpoints a bearer token with --admin-token-secret"},
		{"empty host without token", []string{"--admin-addr", ":0"}, "can be reached from other machines"},
		{"shared with a public inbox", []string{"--addr", "0.0.0.0:0", "--admin-addr", "0.0.0.0:0"}, "can be reached from other machines"},
		{"token not set", []string{"--admin-addr", "0.0.0.0:0", "--admin-token-secret", "ADMIN_TOKEN"}, "--admin-token-secret ADMIN_TOKEN: secret not set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"run", "--specs", specs, "--state", filepath.Join(t.TempDir(), "s.db")}, tc.args...)
			_, errOut, code := runCLI(t, env, args...)
			if code != 2 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, want 2 saying %q:\n%s", code, tc.want, errOut)
			}
		})
	}
}

func TestLoopbackAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8081": true, "[::1]:8081": true, "localhost:8081": true, "127.8.0.1:1": true,
		"0.0.0.0:8081": false, ":8081": false, "[::]:8081": false, "10.0.0.5:8081": false, "casesync.example.org:8081": false, "garbage": false,
	} {
		if got := loopbackAddr(addr); got != want {
			t.Errorf("loopbackAddr(%q) = %v, want %v", addr, got, want)
		}
	}
}

// TestRun_SyncBesideTheDaemonIsRefused: while the daemon holds a state
// file, an `engine sync` of one of its pipelines is refused with exit 2,
// naming the daemon and what to do instead, and writes nothing; with
// --wait it goes ahead once the daemon stops (issue 16 item 1).
func TestRun_SyncBesideTheDaemonIsRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the engine and runs it in child processes")
	}
	bin := buildEngine(t)
	sb, err := sandbox.Start(sandbox.Options{Cases: 40, Clients: 5, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	specs := inboxSpecs(t)
	statePath := filepath.Join(t.TempDir(), "state.db")
	env := os.Environ()
	for _, n := range []string{"PRIMERO_USER", "PRIMERO_PASSWORD", "OSCAR_EMAIL", "OSCAR_PASSWORD", "INBOX_SECRET"} {
		v, _ := sb.Secret(n)
		env = append(env, n+"="+v)
	}
	common := []string{"--specs", specs, "--state", statePath,
		"--base-url", "primero=" + sb.URLs["primero"], "--base-url", "oscar=" + sb.URLs["oscar"]}
	daemon := startEngine(t, bin, env, append([]string{"--addr", freeAddr(t), "--admin-addr", freeAddr(t), "--log-level", "warn"}, common...)...)

	writes := sb.Oscar.Counters().TotalWrites()
	sync := exec.Command(bin, append([]string{"sync", "cases_to_oscar", "--log-level", "error"}, common...)...)
	sync.Env = env
	out, err := sync.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("sync beside the daemon: %v, want exit 2\n%s", err, out)
	}
	want := fmt.Sprintf("is held by engine run, pid %d, since ", daemon.cmd.Process.Pid)
	if !strings.Contains(string(out), want) || !strings.Contains(string(out), "trigger the pipeline through the daemon or stop it") {
		t.Errorf("refusal does not name the daemon and what to do (want %q):\n%s", want, out)
	}
	if w := sb.Oscar.Counters().TotalWrites(); w != writes {
		t.Errorf("the refused sync wrote %d time(s)", w-writes)
	}

	// --wait queues behind the daemon and runs once it has stopped.
	waiting := exec.Command(bin, append([]string{"sync", "cases_to_oscar", "--log-level", "error", "--wait", "1m"}, common...)...)
	waiting.Env = env
	var wout bytes.Buffer
	waiting.Stdout, waiting.Stderr = &wout, &wout
	if err := waiting.Start(); err != nil {
		t.Fatal(err)
	}
	if err := daemon.signal(t, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, daemon.stderr)
	}
	if err := waiting.Wait(); err != nil {
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(wout.String(), failedRecordsMsg) {
			t.Fatalf("sync --wait after the daemon stopped: %v\n%s", err, wout.String())
		}
	}
	if !strings.Contains(wout.String(), "cases_to_oscar: read ") {
		t.Errorf("sync --wait did not run:\n%s", wout.String())
	}
}

func TestAdminOptions_HostsIncludeTheBoundAddress(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want []string
	}{
		{"127.0.0.1:8081", []string{"casesync.internal", "127.0.0.1"}},
		{"10.0.4.7:8081", []string{"casesync.internal", "10.0.4.7"}},
		{"0.0.0.0:8081", []string{"casesync.internal"}},
		{":8081", []string{"casesync.internal"}},
	} {
		o, err := adminOptions(&runFlags{adminAddr: tc.addr, adminHosts: []string{"casesync.internal"}, adminToken: "T"}, &secrets{file: map[string]string{"T": "tok"}})
		if err != nil {
			t.Fatalf("%s: %v", tc.addr, err)
		}
		if strings.Join(o.Hosts, ",") != strings.Join(tc.want, ",") || o.Token != "tok" {
			t.Errorf("%s: hosts %v token %q, want %v", tc.addr, o.Hosts, o.Token, tc.want)
		}
	}
}

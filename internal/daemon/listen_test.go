package daemon_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"casesync/internal/daemon"
)

// TestAdmin_SeparateListenerHostAndToken: the inbox listener serves no
// admin endpoint; the admin one answers only allowed Host names and, with a
// token, only requests carrying it; every response carries the security
// headers.
func TestAdmin_SeparateListenerHostAndToken(t *testing.T) {
	e := newEnv(t, envOptions{dep: deployment{cron: "0 0 1 1 *", inbox: fetchInbox}})
	inbox := httptest.NewServer(e.d.InboxHandler())
	t.Cleanup(inbox.Close)
	admin := httptest.NewServer(e.d.AdminHandler(daemon.AdminOptions{Token: "admin-tok-3f9", Hosts: []string{"casesync.internal"}}))
	t.Cleanup(admin.Close)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(admin.URL, "http://"))

	do := func(method, url, host, token string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	tests := []struct {
		name, method, url, host, token string
		want                           int
	}{
		{"inbox listener: no status", "GET", inbox.URL + "/status", "", "", http.StatusNotFound},
		{"inbox listener: no metrics", "GET", inbox.URL + "/metrics", "", "", http.StatusNotFound},
		{"inbox listener: no page", "GET", inbox.URL + "/", "", "", http.StatusNotFound},
		{"inbox listener: no manual run", "POST", inbox.URL + "/pipelines/" + pipeline + "/run", "", "", http.StatusNotFound},
		{"inbox listener: healthz", "GET", inbox.URL + "/healthz", "", "", http.StatusOK},
		{"admin: no token", "GET", admin.URL + "/status", "", "", http.StatusUnauthorized},
		{"admin: wrong token", "GET", admin.URL + "/metrics", "", "admin-tok-3f8", http.StatusUnauthorized},
		{"admin: token", "GET", admin.URL + "/status", "", "admin-tok-3f9", http.StatusOK},
		{"admin: page with token", "GET", admin.URL + "/", "", "admin-tok-3f9", http.StatusOK},
		{"admin: localhost", "GET", admin.URL + "/metrics", "localhost:" + port, "admin-tok-3f9", http.StatusOK},
		{"admin: allowed name", "GET", admin.URL + "/status", "CaseSync.Internal:" + port, "admin-tok-3f9", http.StatusOK},
		{"admin: rebinding name", "GET", admin.URL + "/status", "attacker.example:" + port, "admin-tok-3f9", http.StatusMisdirectedRequest},
		{"admin: rebinding name, run", "POST", admin.URL + "/pipelines/" + pipeline + "/run", "attacker.example", "admin-tok-3f9", http.StatusMisdirectedRequest},
		{"admin: no inbox", "POST", admin.URL + "/hooks/primero", "", "admin-tok-3f9", http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := do(tc.method, tc.url, tc.host, tc.token)
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
			for h, want := range map[string]string{
				"X-Frame-Options":        "DENY",
				"X-Content-Type-Options": "nosniff",
			} {
				if got := resp.Header.Get(h); got != want {
					t.Errorf("%s: %q, want %q", h, got, want)
				}
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Errorf("Content-Security-Policy: %q", csp)
			}
		})
	}
}

// serveHardened serves the daemon's handler the way engine run does:
// daemon.Listen and daemon.Server.
func serveHardened(tb testing.TB, h http.Handler, maxConns int) string {
	tb.Helper()
	ln, err := daemon.Listen("127.0.0.1:0", maxConns)
	if err != nil {
		tb.Fatal(err)
	}
	srv := daemon.Server(h)
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// TestListener_BoundsHeadersAndConnections: a header block past 16 KiB is
// answered 431 without being read to its end, and connections past the cap
// wait instead of being served at once.
func TestListener_BoundsHeadersAndConnections(t *testing.T) {
	e := newEnv(t, envOptions{dep: deployment{inbox: fetchInbox}, noRun: true})
	addr := serveHardened(t, e.d.InboxHandler(), 2)

	req, _ := http.NewRequest("POST", "http://"+addr+"/hooks/primero", strings.NewReader(`{}`))
	req.Header.Set("X-Pad", strings.Repeat("a", 64<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KiB of headers: status %d, want 431", resp.StatusCode)
	}

	// Two connections that never finish their headers hold both slots:
	// a third client's request waits until one of them gives up.
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST /hooks/primero HTTP/1.1\r\nHost: x\r\nX-Slow: ")
		held = append(held, c)
	}
	got := make(chan int, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			got <- -1
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	select {
	case code := <-got:
		t.Fatalf("a third connection was served (%d) while two held the cap of 2", code)
	case <-time.After(300 * time.Millisecond):
	}
	held[0].Close()
	if code := <-got; code != http.StatusOK {
		t.Errorf("after a slot freed: status %d, want 200", code)
	}
	held[1].Close()
}

// BenchmarkHeaderFlood opens 1,000 connections that each send headers
// without end (1 KiB lines, as fast as the server reads them) to the inbox
// listener (each reopened when the server drops it), for 3 s, and reports the process's peak resident
// memory: what the flood costs the daemon, which issue 16 saw reach 1.5 GB.
// The figure includes this test process (the sandbox, the senders).
//
//	go test -run '^$' -bench HeaderFlood -benchtime 1x ./internal/daemon
func BenchmarkHeaderFlood(b *testing.B) {
	e := newEnv(b, envOptions{dep: deployment{inbox: fetchInbox}, noRun: true})
	addr := serveHardened(b, e.d.InboxHandler(), daemon.DefaultMaxConns)
	before := rssKB(b, "VmRSS")
	for range b.N {
		var (
			wg      sync.WaitGroup
			stop    atomic.Bool
			written atomic.Int64
		)
		line := "X-Pad: " + strings.Repeat("a", 1017) + "\r\n"
		for range 1000 {
			wg.Go(func() {
				// A connection the server drops (431, timeout) is opened
				// again: the flood never lets up.
				for !stop.Load() {
					flood(addr, line, &stop, &written)
				}
			})
		}
		time.Sleep(3 * time.Second)
		stop.Store(true)
		wg.Wait()
		b.ReportMetric(float64(written.Load())/(1<<20), "MB_sent")
	}
	runtime.GC()
	b.ReportMetric(float64(before)/1024, "rss_before_MB")
	b.ReportMetric(float64(rssKB(b, "VmHWM"))/1024, "peak_rss_MB")
	b.ReportMetric(0, "ns/op")
}

// flood sends one request's headers without end until the server drops
// the connection or stop is set.
func flood(addr, line string, stop *atomic.Bool, written *atomic.Int64) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		time.Sleep(10 * time.Millisecond)
		return
	}
	defer c.Close()
	w := bufio.NewWriter(c)
	fmt.Fprintf(w, "POST /hooks/primero HTTP/1.1\r\nHost: x\r\n")
	for !stop.Load() {
		c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := w.WriteString(line); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				w = bufio.NewWriter(c) // the server is not reading: hold on
				continue
			}
			return
		}
		written.Add(int64(len(line)))
	}
}

// rssKB reads a memory line (VmRSS, VmHWM) of /proc/self/status.
func rssKB(tb testing.TB, field string) int64 {
	tb.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Skip("needs /proc (Linux) to read the process's memory:", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	tb.Fatalf("no %s in /proc/self/status", field)
	return 0
}

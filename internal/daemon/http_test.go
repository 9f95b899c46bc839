package daemon_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"casesync/internal/daemon"
)

func get(t *testing.T, url string) (int, string, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func TestHTTP_HealthReadyPageAndManualRun(t *testing.T) {
	e := newEnv(t, envOptions{dep: deployment{cron: "0 0 1 1 *", inbox: fetchInbox}})
	for _, tc := range []struct {
		path, ctype, contains string
	}{
		{"/healthz", "text/plain; charset=utf-8", "ok"},
		{"/readyz", "text/plain; charset=utf-8", "ready"},
		{"/status", "application/json", `"spec_hash"`},
		{"/metrics", "text/plain; version=0.0.4; charset=utf-8", "# TYPE casesync_records_total counter"},
		{"/", "text/html; charset=utf-8", "cases_to_oscar"},
	} {
		code, ctype, body := get(t, e.srv.URL+tc.path)
		if code != http.StatusOK || ctype != tc.ctype || !strings.Contains(body, tc.contains) {
			t.Errorf("GET %s: %d %q, body contains %q: %v", tc.path, code, ctype, tc.contains, strings.Contains(body, tc.contains))
		}
	}
	if code, _, _ := get(t, e.srv.URL+"/nope"); code != http.StatusNotFound {
		t.Errorf("GET /nope: %d", code)
	}
	if got := e.post("/pipelines/nope/run", "", nil).StatusCode; got != http.StatusNotFound {
		t.Errorf("run of an unknown pipeline: %d, want 404", got)
	}
	// Another site's page cannot make an admin's browser start runs.
	if got := e.post("/pipelines/"+pipeline+"/run", "", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}).StatusCode; got != http.StatusForbidden {
		t.Errorf("cross-origin run: %d, want 403", got)
	}

	// A rejected reload shows on the page with its position, escaped.
	if err := os.WriteFile(filepath.Join(e.dir, "sync.cue"), []byte("package daemontest\n\nconnectors: <script>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.d.Reload(); err == nil {
		t.Fatal("a broken spec reloaded")
	}
	e.waitKind(daemon.EventReloadFailed)
	_, _, page := get(t, e.srv.URL+"/")
	if !strings.Contains(page, "Last reload rejected") || !strings.Contains(page, "sync.cue:3:") || strings.Contains(page, "<script>") {
		t.Errorf("status page after a rejected reload:\n%s", page)
	}
}

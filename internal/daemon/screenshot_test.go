package daemon_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"casesync/internal/daemon"
)

// chromium finds Debian's headless-capable browser: a skip, saying why,
// outside CI; a failure in CI, where .ci/run installs it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed; .ci/run installs it (apt-get install chromium)")
	}
	t.Skip("chromium is not installed (apt-get install chromium): the status page screenshots need a real browser; CI installs it")
	return ""
}

// pageLayout is what the browser measured on the status page.
type pageLayout struct {
	ScrollWidth int      `json:"scrollWidth"`
	InnerWidth  int      `json:"innerWidth"`
	Overflowing []string `json:"overflowing"`
	Banner      string   `json:"banner"`
	Cards       []string `json:"cards"`
	Text        string   `json:"text"`
}

const measureJS = `(() => {
	const iw = window.innerWidth;
	const over = [...document.querySelectorAll('body *')]
		.filter(e => e.getBoundingClientRect().right > iw + 0.5)
		.map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : '') + ': ' + e.textContent.trim().slice(0, 40));
	return {
		scrollWidth: document.documentElement.scrollWidth,
		innerWidth: iw,
		overflowing: over.slice(0, 10),
		banner: document.querySelector('#attention').className,
		cards: [...document.querySelectorAll('.card')].map(c => c.className),
		text: document.body.innerText,
	};
})()`

// TestStatusPage_Screenshots loads the status page in headless Chromium
// during a run whose records fail (held on its third page) and after it,
// at a desktop width and a phone's, and checks what an admin would see:
// the failed state, and nothing wider than the screen. The PNGs go to
// $CASESYNC_SCREENSHOT_DIR when set, for a person to look at.
func TestStatusPage_Screenshots(t *testing.T) {
	browser := chromium(t)
	dir := os.Getenv("CASESYNC_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}

	e := newEnv(t, envOptions{dep: deployment{cron: "0 0 1 1 *"}, noRun: true})
	breakReferred(e)
	hit, release := e.gate.hold(3)
	defer release()
	e.run()
	if got := e.post("/pipelines/"+pipeline+"/run", "", nil).StatusCode; got != http.StatusAccepted {
		t.Fatalf("manual run: %d", got)
	}
	<-hit

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("hide-scrollbars", true))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	browserCtx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("start %s: %v", browser, err)
	}

	shoot := func(phase string, want []string) {
		for _, width := range []int64{1280, 390} {
			t.Run(fmt.Sprintf("%s_%d", phase, width), func(t *testing.T) {
				tab, cancel := chromedp.NewContext(browserCtx)
				defer cancel()
				emulate := chromedp.EmulateViewport(width, 900)
				if width < 600 {
					emulate = chromedp.EmulateViewport(width, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile)
				}
				if err := chromedp.Do(tab, emulate, chromedp.Navigate(e.srv.URL+"/"), chromedp.WaitReady(chromedp.CSS("#attention"))); err != nil {
					t.Fatal(err)
				}
				got, err := chromedp.Run(tab, chromedp.Evaluate[pageLayout](measureJS))
				if err != nil {
					t.Fatal(err)
				}
				png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
				if err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(dir, fmt.Sprintf("status-%s-%dpx.png", phase, width))
				if err := os.WriteFile(path, png, 0o644); err != nil {
					t.Fatal(err)
				}
				t.Logf("screenshot: %s", path)
				if got.InnerWidth != int(width) || got.ScrollWidth > got.InnerWidth || len(got.Overflowing) > 0 {
					t.Errorf("page wider than the %d px screen: scroll width %d, viewport %d, overflowing %q", width, got.ScrollWidth, got.InnerWidth, got.Overflowing)
				}
				if !strings.Contains(got.Banner, "bad") || len(got.Cards) != 1 || got.Cards[0] != "card attention" {
					t.Errorf("failed state not shown: banner class %q, cards %q", got.Banner, got.Cards)
				}
				for _, w := range want {
					if !strings.Contains(got.Text, w) {
						t.Errorf("page text lacks %q:\n%s", w, got.Text)
					}
				}
			})
		}
	}
	shoot("during", []string{"1 pipeline(s) need attention", "record(s) failed so far", "needs attention"})
	release()
	e.waitKind(daemon.EventRunFinished)
	// A rejected reload too: its problem line is a long path with no space
	// to break at, the likeliest thing to push a phone's page sideways.
	if err := os.WriteFile(filepath.Join(e.dir, "sync.cue"), []byte("package daemontest\n\nconnectors: oscar: base_url: 42\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.d.Reload(); err == nil {
		t.Fatal("a broken spec reloaded")
	}
	e.waitKind(daemon.EventReloadFailed)
	shoot("after", []string{"1 pipeline(s) need attention", "finished with", "failed record(s)", "map_error", "Last reload rejected", "sync.cue:3:"})
}

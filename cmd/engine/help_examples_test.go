//go:build unix

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"casesync/internal/sandbox"
	"casesync/internal/state"
	"casesync/internal/testenv"
)

// helpOrder is the order the examples run in, so each finds what an admin
// would have by then: syncs before the commands that read their state,
// retry after the data it retries is fixed. Every command with examples
// must be listed, so a new command's examples cannot go untested.
var helpOrder = []string{
	"engine check", "engine", "engine demo", "engine fake", "engine bench", "engine sync",
	"engine status", "engine runs", "engine failures", "engine dry-run", "engine cursor",
	"engine retry", "engine run", "engine test", "engine manifest",
}

// helpAlone are the commands whose examples share nothing with the others:
// they start their own fakes, keep their own state and write their own
// files (under the mapped /tmp/), so they need not wait their turn in
// helpOrder, whose other examples build on each other's state in the
// sandbox and its state file.
var helpAlone = []string{"engine check", "engine demo", "engine fake", "engine bench", "engine test", "engine manifest"}

// Absolute paths an example may use; the test maps each into a temporary
// folder standing in for the machine's root.
var helpPaths = []string{"/etc/casesync/", "/var/lib/casesync/", "/run/casesync/", "/tmp/"}

// TestHelpExamples runs every example of every --help as an admin would
// paste it: from the repository root, with the built engine on PATH,
// against the fakes (CASESYNC_BASE_URLS points every deployment at them,
// CASESYNC_STATE keeps the state out of the repository). Only three things
// change in the text: the absolute paths above move into a temporary
// root, each 127.0.0.1 port becomes a free one, and `engine run` and
// `engine fake` (which serve until stopped) start in the background and
// are waited for on their --addr, then stopped with SIGTERM, and must exit
// 0, at the end of their paragraph.
func TestHelpExamples(t *testing.T) {
	for _, tool := range []string{"bash", "jq", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed; .ci/run installs it", tool)
			}
			t.Skipf("%s is not installed, and the examples use it (apt-get install %s); CI installs it", tool, tool)
		}
	}
	repo := testenv.RepoRoot(t)
	bin := buildEngine(t)
	sys := t.TempDir()
	for _, p := range helpPaths {
		if err := os.MkdirAll(filepath.Join(sys, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The demo's seed: every shipped deployment has work to do. Each
	// example command is a process of its own that logs in to Primero,
	// and the chain runs a dozen of them within a minute where an admin
	// pasting them would take several: Primero's 6 logins a minute (its
	// fake's default, tested with the fake) would refuse some with 429
	// depending on where the clock's minutes fall, so the sandbox has no
	// login throttle.
	sb, err := sandbox.Start(sandbox.Options{Cases: 200, Clients: 60, Interventions: 20, Decisions: 10, Seed: 1,
		OSCaRAutoAccept: true, PingStatusDelay: 20 * time.Millisecond, PrimeroLoginThrottle: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	writeSecretsFile(t, filepath.Join(sys, "etc/casesync/kh.env"), sb, "PRIMERO_USER", "PRIMERO_PASSWORD", "OSCAR_EMAIL", "OSCAR_PASSWORD")
	statePath := filepath.Join(sys, "var/lib/casesync/kh.db")
	var urls []string
	for name, u := range sb.URLs {
		urls = append(urls, name+"="+u)
	}
	env := []string{
		"PATH=" + filepath.Dir(bin) + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + sys, "TMPDIR=" + os.TempDir(), "LANG=C.UTF-8",
		"CASESYNC_STATE=" + statePath,
		"CASESYNC_BASE_URLS=" + strings.Join(urls, ","),
	}
	if gc := os.Getenv("GOCACHE"); gc != "" {
		env = append(env, "GOCACHE="+gc)
	}

	examples := map[string]string{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Example != "" {
			examples[c.CommandPath()] = c.Example
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newApp(io.Discard, io.Discard, os.Getenv).root())
	for path := range examples {
		if !slices.Contains(helpOrder, path) {
			t.Errorf("%s has examples but is not in helpOrder", path)
		}
	}

	// Three referred cases get a date of birth the mapping refuses before
	// the first sync, so the state commands have failures to show; retry's
	// examples run after the data is fixed.
	broken := map[string]any{}
	before := map[string]func(t *testing.T){
		"engine sync": func(t *testing.T) {
			for _, id := range testenv.ReferredCases(sb)[:3] {
				c, _ := sb.Primero.Case(id)
				broken[id] = c["date_of_birth"]
				sb.Primero.Touch(id, map[string]any{"date_of_birth": "2015-13-45"})
			}
		},
		"engine status": func(t *testing.T) {
			st, err := state.OpenReadOnly(statePath)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			stats, err := st.Stats(context.Background())
			if err != nil || stats["f1_referrals_to_oscar"].Queued == 0 {
				t.Fatalf("setup: no queued failure for f1_referrals_to_oscar (%v, %+v)", err, stats["f1_referrals_to_oscar"])
			}
		},
		"engine retry": func(t *testing.T) {
			for id, dob := range broken {
				sb.Primero.Touch(id, map[string]any{"date_of_birth": dob})
			}
		},
		// engine run's first example asks for a manual run of
		// f1_referrals_to_oscar (cron "0 * * * *") and needs 202. Were the
		// top of an hour to pass since that pipeline last ran, the daemon
		// would start a catch-up run at once, as it should, and the manual
		// run would be refused 409 as already running; so would it at the
		// cron's own start. So the example starts at least a minute clear
		// of the hour, after a run of the pipeline in the current hour.
		"engine run": func(t *testing.T) {
			const p = "f1_referrals_to_oscar"
			now := time.Now()
			if hour := now.Truncate(time.Hour).Add(time.Hour); hour.Sub(now) < time.Minute {
				time.Sleep(hour.Sub(now) + time.Second)
			}
			st, err := state.OpenReadOnly(statePath)
			if err != nil {
				t.Fatal(err)
			}
			last, ok, err := st.LastRun(context.Background(), p)
			st.Close()
			if err != nil || !ok {
				t.Fatalf("setup: no run of %s yet (%v)", p, err)
			}
			if last.Started.Before(time.Now().Truncate(time.Hour)) {
				sync := exec.Command(bin, "sync", p, "--specs", "specs/cambodia", "--secrets-file", filepath.Join(sys, "etc/casesync/kh.env"))
				sync.Dir, sync.Env = repo, env
				if out, err := sync.CombinedOutput(); sync.ProcessState == nil || sync.ProcessState.ExitCode() > 1 {
					t.Fatalf("setup: engine sync %s: %v\n%s", p, err, out)
				}
			}
		},
	}

	run := func(t *testing.T, path, ex string) {
		if f := before[path]; f != nil {
			f(t)
		}
		script, err := exampleScript(ex, sys)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", "-c", script)
		cmd.Dir, cmd.Env = repo, env
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		// Servers left behind by a failed script go with its group.
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err = cmd.Run()
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if err != nil {
			t.Errorf("%s --help examples failed (%v):\n%s\n--- script ---\n%s", path, err, tail(out.String(), 6000), script)
		}
	}
	var chain []string
	for _, path := range helpOrder {
		if _, ok := examples[path]; !ok {
			t.Errorf("%s is in helpOrder but has no examples", path)
		} else if !slices.Contains(helpAlone, path) {
			chain = append(chain, path)
		}
	}
	// The examples of helpAlone run beside the chain (the slowest, demo
	// and bench, took half the test's minute and a half when it ran them
	// in turn); the group returns when all have.
	t.Run("examples", func(t *testing.T) {
		for _, path := range helpAlone {
			t.Run(strings.ReplaceAll(path, " ", "_"), func(t *testing.T) {
				t.Parallel()
				run(t, path, examples[path])
			})
		}
		t.Run("chain", func(t *testing.T) {
			t.Parallel()
			for _, path := range chain {
				if !t.Run(strings.ReplaceAll(path, " ", "_"), func(t *testing.T) { run(t, path, examples[path]) }) {
					break // later examples build on this one's state
				}
			}
		})
	})
	if _, err := os.Stat(filepath.Join(repo, "specs/cambodia/casesync.db")); err == nil {
		t.Error("an example wrote a state file into the repository")
	}
}

func writeSecretsFile(t *testing.T, path string, sb *sandbox.Sandbox, names ...string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("# fake credentials, as the fakes accept them\n")
	for _, n := range names {
		v, _ := sb.Secret(n)
		fmt.Fprintf(&b, "export %s='%s'\n", n, v)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

var (
	absPathRE = regexp.MustCompile(`(?:^|[\s='"(])(/[A-Za-z][^\s'")]*)`)
	portRE    = regexp.MustCompile(`127\.0\.0\.1:(\d+)`)
	addrRE    = regexp.MustCompile(`--(?:admin-)?addr[ =](\S+)`)
)

// exampleScript turns an Example text into a bash script (see
// TestHelpExamples for the only changes it makes).
func exampleScript(ex, sys string) (string, error) {
	var code []string // the lines that run: comments may name any path
	for _, l := range strings.Split(ex, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			code = append(code, l)
		}
	}
	for _, m := range absPathRE.FindAllStringSubmatch(strings.Join(code, "\n"), -1) {
		if !slices.ContainsFunc(helpPaths, func(p string) bool { return strings.HasPrefix(m[1], p) }) {
			return "", fmt.Errorf("example uses %s: use a path under %v, which the test maps", m[1], helpPaths)
		}
	}
	// One pass, so a mapped path is not mapped again.
	var pairs []string
	for _, p := range helpPaths {
		pairs = append(pairs, p, filepath.Join(sys, p)+"/")
	}
	ex = strings.NewReplacer(pairs...).Replace(ex)
	ports := map[string]string{}
	var err error
	ex = portRE.ReplaceAllStringFunc(ex, func(s string) string {
		old := portRE.FindStringSubmatch(s)[1]
		if _, ok := ports[old]; !ok {
			var addr string
			addr, err = freePort()
			ports[old] = addr
		}
		return ports[old]
	})
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(`set -euo pipefail
servers=()
wait_port() { # a generous bound: a loaded machine starts a server slowly
	for _ in $(seq 2400); do
		if (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; then return 0; fi
		sleep 0.05
	done
	echo "test: nothing listens on $1" >&2; return 1
}
stop_servers() {
	for p in "${servers[@]}"; do
		kill -TERM "$p"
		if ! wait "$p"; then echo "test: a server exited $? after SIGTERM" >&2; return 1; fi
	done
	servers=()
}
`)
	for _, para := range strings.Split(ex, "\n\n") {
		var line string
		for _, raw := range strings.Split(para, "\n") {
			raw = strings.TrimSpace(raw)
			if strings.HasPrefix(raw, "#") {
				continue
			}
			if cont, ok := strings.CutSuffix(raw, `\`); ok {
				line += cont
				continue
			}
			line += raw
			if line == "" {
				continue
			}
			if strings.HasPrefix(line, "engine run ") || strings.HasPrefix(line, "engine fake ") {
				ms := addrRE.FindAllStringSubmatch(line, -1)
				if ms == nil {
					return "", fmt.Errorf("a server example must give --addr, so the test knows where to wait: %s", line)
				}
				fmt.Fprintf(&b, "%s &\nservers+=($!)\n", line)
				for _, m := range ms {
					fmt.Fprintf(&b, "wait_port %s\n", m[1])
				}
			} else {
				b.WriteString(line + "\n")
			}
			line = ""
		}
		b.WriteString("stop_servers\n")
	}
	return b.String(), nil
}

// freePort is a 127.0.0.1 address nothing listens on now.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

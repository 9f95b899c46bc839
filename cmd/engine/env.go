package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"casesync/connectors/rest"
	"casesync/engine"
	"casesync/engine/spec"
	"casesync/internal/redact"
	"casesync/internal/state"
	"casesync/internal/wire"
)

// common are the flags every command that runs a deployment shares.
type common struct {
	specs       string
	statePath   string
	secretsFile string
	baseURLs    []string
	logs        logFlags
	// wait is how long a command that writes state waits for another
	// process's lease (registerWait); 0 refuses at once.
	wait time.Duration
	// now, when set (registerNow), is the time the run takes as its start.
	now string
}

// registerNow adds --now to a command that runs a pipeline.
func (c *common) registerNow(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.now, "now", "", "run as if it were this time (RFC 3339, \"2025-06-01 08:00:00\" UTC, or a date): $now, ages and windows are computed from it, for reproducible previews (default: the real clock)")
}

// registerWait adds --wait to a command that writes the state file.
func (c *common) registerWait(cmd *cobra.Command) {
	cmd.Flags().DurationVar(&c.wait, "wait", 0, "when another engine process holds the state file, wait up to this long for it (e.g. 10m) instead of refusing")
}

func (c *common) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&c.specs, "specs", "", "deployment folder (default $CASESYNC_SPECS, else the current folder)")
	f.StringVar(&c.statePath, "state", "", "state file (default $CASESYNC_STATE, else casesync.db in the deployment folder)")
	f.StringVar(&c.secretsFile, "secrets-file", "", "dotenv file of NAME=VALUE lines (quotes, export, # comments; no $VAR expansion); the environment is used for a name it lacks")
	f.StringArrayVar(&c.baseURLs, "base-url", nil, "override a connector's base URL: NAME=URL (repeatable; also $CASESYNC_BASE_URLS=NAME=URL,…)")
	c.logs.register(f, "warn")
}

func (a *app) specsDir(c *common) string {
	if c.specs != "" {
		return c.specs
	}
	if v := a.getenv("CASESYNC_SPECS"); v != "" {
		return v
	}
	return "."
}

func (a *app) statePathFor(c *common, plan *engine.Plan) string {
	if c.statePath != "" {
		return c.statePath
	}
	if v := a.getenv("CASESYNC_STATE"); v != "" {
		return v
	}
	return filepath.Join(plan.Dir, "casesync.db")
}

// loadPlan loads the deployment; spec problems exit 1 with every problem.
func (a *app) loadPlan(c *common) (*engine.Plan, error) {
	dir := a.specsDir(c)
	plan, err := spec.Load(dir, spec.Options{})
	if err != nil {
		var ps spec.Problems
		if errors.As(err, &ps) {
			for _, p := range ps {
				a.note(c, slog.LevelError, p.String(), false)
			}
			return nil, &exitError{code: 1, err: fmt.Errorf("%d problem(s) in %s; fix them (engine check %s)", len(ps), dir, dir)}
		}
		return nil, &exitError{code: 2, err: err}
	}
	urls, err := a.baseURLs(c, plan)
	if err != nil {
		return nil, err
	}
	lo := wire.LoadOptions{BaseURLs: urls}
	if v := a.getenv("CASESYNC_CONCURRENCY"); v != "" {
		// Set by engine bench --concurrency for its child process.
		lo.Concurrency, _ = strconv.Atoi(v)
	}
	plan, err = wire.Adjust(plan, lo)
	if err != nil {
		return nil, usageError("--base-url: %v", err)
	}
	return plan, nil
}

// baseURLs are the connector base URLs to override: $CASESYNC_BASE_URLS
// (NAME=URL,NAME=URL; names the deployment lacks are ignored, so one
// setting serves a staging machine's every deployment), then each
// --base-url flag, which must name a connector of the deployment.
func (a *app) baseURLs(c *common, plan *engine.Plan) (map[string]string, error) {
	urls := map[string]string{}
	if env := a.getenv("CASESYNC_BASE_URLS"); env != "" {
		for kv := range strings.SplitSeq(env, ",") {
			name, u, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok || name == "" || u == "" {
				return nil, usageError("CASESYNC_BASE_URLS wants NAME=URL,NAME=URL, not %q", kv)
			}
			if _, known := plan.Connectors[name]; known {
				urls[name] = u
			}
		}
	}
	for _, kv := range c.baseURLs {
		name, u, ok := strings.Cut(kv, "=")
		if !ok || name == "" || u == "" {
			return nil, usageError("--base-url wants NAME=URL, not %q", kv)
		}
		if _, known := plan.Connectors[name]; !known {
			return nil, usageError("--base-url: no connector %q in %s", name, plan.Name)
		}
		urls[name] = u
	}
	return urls, nil
}

// secrets reads a secrets file (dotenv: NAME=VALUE lines, quotes, export,
// # comments; see parseSecretsFile) in front of the environment. Values never leave this type except to a connector.
type secrets struct {
	file   map[string]string
	getenv func(string) string
}

func (s *secrets) Secret(name string) (string, bool) {
	if v, ok := s.file[name]; ok {
		return v, true
	}
	if s.getenv != nil {
		if v := s.getenv(name); v != "" {
			return v, true
		}
	}
	return "", false
}

// Values lists every resolved secret value, for redaction.
func (s *secrets) Values(names []string) []string {
	var out []string
	for _, n := range names {
		if v, ok := s.Secret(n); ok {
			out = append(out, v)
		}
	}
	return out
}

func (a *app) loadSecrets(c *common) (*secrets, error) {
	s := &secrets{file: map[string]string{}, getenv: a.getenv}
	if c.secretsFile == "" {
		return s, nil
	}
	f, err := os.Open(c.secretsFile)
	if err != nil {
		return nil, &exitError{code: 2, err: fmt.Errorf("read secrets file: %w", err)}
	}
	defer f.Close()
	if err := a.checkSecretsFileMode(c, c.secretsFile, f); err != nil {
		return nil, err
	}
	if s.file, err = parseSecretsFile(f, c.secretsFile); err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	return s, nil
}

// checkSecretsFileMode refuses a secrets file any user of the machine can
// read or change, and warns when its group can read it (a service group
// sharing it can be deliberate). Windows has no such mode bits to check.
func (a *app) checkSecretsFileMode(c *common, name string, f *os.File) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	fi, err := f.Stat()
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("read secrets file: %w", err)}
	}
	switch m := fi.Mode().Perm(); {
	case m&0o007 != 0:
		return &exitError{code: 2, err: fmt.Errorf("secrets file %s is open to every user of this machine (mode %#o); make it private: chmod 600 %s", name, m, name)}
	case m&0o070 != 0:
		a.note(c, slog.LevelWarn, fmt.Sprintf("warning: secrets file %s is readable by its group (mode %#o); chmod 600 %s unless that group is meant to read it", name, m, name), true)
	}
	return nil
}

// checkSecrets fails before any request when a declared secret is unset.
func checkSecrets(plan *engine.Plan, s engine.Secrets) error {
	var missing []string
	for _, n := range plan.Secrets {
		if _, ok := s.Secret(n); !ok {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return &exitError{code: 2, err: fmt.Errorf("secret(s) not set: %s (set them in the environment or a --secrets-file)", strings.Join(missing, ", "))}
	}
	return nil
}

func (a *app) logger(c *common, red *redact.Redactor) *slog.Logger {
	return c.logs.newLogger(a.stderr, red)
}

// deployment is a loaded plan with its state, connectors and runner
// (internal/wire), and the command's logger and redactor.
type deployment struct {
	plan   *engine.Plan
	store  *state.Store
	pool   *rest.Pool
	runner *engine.Runner
	log    *slog.Logger
	red    *redact.Redactor
	wired  *wire.Deployment
	// ownStore: a dry-run's store, opened here and closed with it.
	ownStore bool
	// throwaway: the folder of a dry-run's empty state (no state file
	// yet), removed on Close.
	throwaway string
}

func (d *deployment) Close() {
	if d.wired != nil {
		d.wired.Close()
	}
	if d.ownStore && d.store != nil {
		d.store.Close()
	}
	if d.throwaway != "" {
		os.RemoveAll(d.throwaway)
	}
}

// open loads everything a run needs. readOnly opens the state without
// creating it (dry-run reads cursors and hashes but writes nothing).
func (a *app) open(ctx context.Context, c *common, readOnly bool) (*deployment, error) {
	plan, err := a.loadPlan(c)
	if err != nil {
		return nil, err
	}
	return a.openPlan(ctx, c, plan, readOnly)
}

// openPlan is open for a plan already loaded.
func (a *app) openPlan(ctx context.Context, c *common, plan *engine.Plan, readOnly bool) (*deployment, error) {
	sec, err := a.loadSecrets(c)
	if err != nil {
		return nil, err
	}
	if err := checkSecrets(plan, sec); err != nil {
		return nil, err
	}
	red := redact.New(sec.Values(plan.Secrets)...)
	log := a.logger(c, red)
	d := &deployment{plan: plan, log: log, red: red}
	path := a.statePathFor(c, plan)
	o := wire.Options{StatePath: path, Secrets: sec, Log: log}
	if c.now != "" {
		at, err := parseNow(c.now)
		if err != nil {
			return nil, usageError("%s", err)
		}
		o.Clock = &startClock{at: at}
	}
	if readOnly {
		if o.State, d.throwaway, err = openStateForDryRun(path); err != nil {
			return nil, &exitError{code: 2, err: err}
		}
		d.store, d.ownStore = o.State, true
	}
	o.StateWait = c.wait
	d.wired, err = wire.Open(plan, o)
	if err != nil {
		d.Close()
		return nil, &exitError{code: 2, err: err}
	}
	d.store, d.pool, d.runner = d.wired.State, d.wired.Conns, d.wired.Runner
	return d, nil
}

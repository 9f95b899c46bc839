package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"casesync/connectors/rest"
	"casesync/engine"
	"casesync/engine/spec"
	"casesync/internal/daemon"
	"casesync/internal/redact"
	"casesync/internal/watch"
	"casesync/internal/wire"
)

const runLong = `Run is the always-on daemon for one deployment. It

  - runs each pipeline on its trigger.cron schedule, and the pipelines
    chained after it (trigger.after) when it succeeds. Runs of one pipeline
    never overlap: a firing while it runs waits, and further firings fold
    into that one. A schedule missed while the daemon was down runs once at
    start (not once per missed slot), as does a run that was cut short;
  - accepts webhook deliveries on each trigger.inbox path (Primero's data
    forwarding and its Sync button) on --addr: an HMAC-SHA256 signature with
    a timestamp inside the replay window and/or the shared secret in the
    declared header or as the basic-auth password (failures logged without
    the value, and a client that keeps failing answered 429 for a while),
    JSON content types only (415), a body limit answered with 413,
    the delivery stored in the state file before the 202, a repeated
    delivery answered 200 and not processed again, and every stored
    delivery processed through its pipeline, after a crash too;
  - reloads the spec when a .cue or lookup file changes (or on SIGHUP, or
    every --poll interval where the file system sends no events), with the
    same loader as 'engine check'. A spec that fails keeps the running one
    in place and reports every problem with its position (log, /status,
    metric); runs already going finish on the spec they started with;
  - serves the admin endpoints on --admin-addr (loopback by default):
    /status (JSON), /metrics (Prometheus), a read-only status page at /,
    and POST /pipelines/NAME/run for a manual run. They answer only Host
    names that are loopback or given with --admin-host (against DNS
    rebinding), and with --admin-token-secret only requests carrying
    Authorization: Bearer TOKEN; an --admin-addr other machines can reach
    needs the token. /healthz and /readyz are on both listeners. Give
    --admin-addr the same address as --addr to serve both on one.
    Each listener serves at most --max-conns connections at once, with
    headers of at most 16 KiB.

On SIGTERM or SIGINT it stops taking new runs, lets each run finish the
page in hand and commit, and exits 0; the next start resumes where it
stopped. A second signal exits at once.

Secrets come from the environment or --secrets-file when the daemon starts;
restart it to change them.

Exit codes: 0 clean shutdown, 1 spec problems at start, 2 usage or I/O error.`

type runFlags struct {
	common
	pidFile    string
	addr       string
	adminAddr  string
	adminToken string // secret name
	adminHosts []string
	maxConns   int
	poll       time.Duration
	drain      time.Duration
}

func (a *app) runCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the daemon: schedules, webhook inbox, hot reload, status and metrics",
		Long:  runLong,
		Example: `  # Webhook inboxes on :8080, the status page on http://127.0.0.1:8081/;
  # then, from another shell, reload the spec by hand and start a run
  # without waiting for cron (under systemd: systemctl reload casesync)
  engine run --specs specs/cambodia --secrets-file /etc/casesync/kh.env \
    --addr 127.0.0.1:8080 --admin-addr 127.0.0.1:8081 --pid-file /run/casesync/kh.pid
  kill -HUP $(cat /run/casesync/kh.pid)
  curl -fsS -X POST http://127.0.0.1:8081/pipelines/f1_referrals_to_oscar/run

  # State in /var/lib, JSON logs, inboxes and admin endpoints on one port,
  # and a spec folder on a network file system that sends no change events
  engine run --specs specs/cambodia --state /var/lib/casesync/kh.db \
    --secrets-file /etc/casesync/kh.env --addr 127.0.0.1:9090 --admin-addr 127.0.0.1:9090 \
    --poll 30s --log-format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runDaemon(cmd.Context(), &f)
		},
	}
	f.common.register(cmd)
	f.registerWait(cmd)
	fl := cmd.Flags()
	// A daemon's log is its record: start and reload lines are info.
	fl.Lookup("log-level").DefValue = "info"
	f.common.logs.level.value = "info"
	fl.StringVar(&f.pidFile, "pid-file", "", "write the daemon's process id here before it listens (for kill -HUP $(cat FILE)); removed on exit")
	fl.StringVar(&f.addr, "addr", "127.0.0.1:8080", "listen address for the webhook inboxes (put a TLS reverse proxy in front to expose it)")
	fl.StringVar(&f.adminAddr, "admin-addr", "127.0.0.1:8081", "listen address for /status, /metrics, the status page and manual runs (the same as --addr: one listener)")
	fl.StringVar(&f.adminToken, "admin-token-secret", "", "name of a secret (environment or --secrets-file) holding the bearer token the admin endpoints require; needed when --admin-addr is not loopback")
	fl.StringArrayVar(&f.adminHosts, "admin-host", nil, "a Host name the admin endpoints answer besides localhost, 127.0.0.1 and ::1 (repeatable)")
	fl.IntVar(&f.maxConns, "max-conns", daemon.DefaultMaxConns, "connections each listener serves at once; more wait")
	fl.DurationVar(&f.poll, "poll", 0, "also rescan the spec files this often (for file systems without change events)")
	fl.DurationVar(&f.drain, "drain-timeout", 30*time.Second, "on shutdown, how long runs may take to reach a page boundary before they are cancelled")
	return cmd
}

func (a *app) runDaemon(ctx context.Context, f *runFlags) error {
	if f.poll < 0 || f.drain < 0 {
		return usageError("--poll and --drain-timeout must not be negative")
	}
	plan, err := a.loadPlan(&f.common)
	if err != nil {
		return err
	}
	sec, err := a.loadSecrets(&f.common)
	if err != nil {
		return err
	}
	if err := checkSecrets(plan, sec); err != nil {
		return err
	}
	admin, err := adminOptions(f, sec)
	if err != nil {
		return err
	}
	red := redact.New(append(sec.Values(plan.Secrets), admin.Token)...)
	log := a.logger(&f.common, red)
	statePath := a.statePathFor(&f.common, plan)
	store, err := openStateWrite(statePath, f.wait)
	if err != nil {
		return err
	}
	defer store.Close()

	d, err := daemon.New(daemon.Config{
		Plan: plan,
		Load: a.planLoader(&f.common),
		Open: func(p *engine.Plan, observe func(string, string, time.Duration)) (*wire.Deployment, error) {
			return wire.Open(p, wire.Options{State: store, Secrets: sec, Log: log, REST: rest.Options{Redactor: red, Observe: observe}})
		},
		Secrets:      sec,
		State:        store,
		Clock:        engine.SystemClock{},
		Log:          log,
		DrainTimeout: f.drain,
	})
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	// SIGHUP is caught before the pid file is written and the ports open:
	// its default action ends the process, so a reload sent by whoever
	// waited for either (kill -HUP $(cat FILE), systemctl reload) in the
	// moments before would otherwise kill the daemon. A signal caught
	// before the loop below starts waits in the channel.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if f.pidFile != "" {
		// Lets an admin signal this daemon and no other engine process
		// (a fake, a sync, a bench) that pidof would also name. Written
		// before the ports open, so whoever waits for a port finds it.
		if err := os.WriteFile(f.pidFile, fmt.Appendf(nil, "%d\n", os.Getpid()), 0o644); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("write --pid-file: %w", err)}
		}
		defer os.Remove(f.pidFile)
	}
	type listener struct {
		ln  net.Listener
		srv *http.Server
	}
	var listeners []listener
	defer func() {
		for _, l := range listeners {
			l.ln.Close()
		}
	}()
	listen := func(addr string, h http.Handler) (net.Listener, error) {
		ln, err := daemon.Listen(addr, f.maxConns)
		if err != nil {
			return nil, &exitError{code: 2, err: err}
		}
		listeners = append(listeners, listener{ln: ln, srv: daemon.Server(h)})
		return ln, nil
	}
	var ln, adminLn net.Listener
	if f.adminAddr == f.addr {
		if ln, err = listen(f.addr, d.Handler(admin)); err != nil {
			return err
		}
		adminLn = ln
	} else {
		if ln, err = listen(f.addr, d.InboxHandler()); err != nil {
			return err
		}
		if adminLn, err = listen(f.adminAddr, d.AdminHandler(admin)); err != nil {
			return err
		}
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()

	for _, l := range listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.srv.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("http server stopped", "addr", l.ln.Addr().String(), "error", err)
			}
		}()
	}
	a.watchSpecs(bg, &wg, f, plan, d, log)

	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-bg.Done():
				return
			case <-hup:
				log.Info("SIGHUP: reloading the spec")
				d.RequestReload("SIGHUP")
			}
		}
	}()

	fmt.Fprintf(a.stdout, "engine run: deployment %s (spec %s, state %s) listening on http://%s (inboxes), admin on http://%s\n", plan.Name, plan.Hash, statePath, ln.Addr(), adminLn.Addr())
	log.Info("daemon started", "deployment", plan.Name, "hash", plan.Hash, "addr", ln.Addr().String(), "admin_addr", adminLn.Addr().String(), "state", statePath)
	if err := d.Run(ctx); err != nil {
		return &exitError{code: 1, err: err}
	}
	// Runs have committed; finish the requests in flight (deliveries are
	// stored before they are answered) and stop.
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, l := range listeners {
		if err := l.srv.Shutdown(sctx); err != nil {
			log.Warn("http shutdown", "addr", l.ln.Addr().String(), "error", err)
		}
	}
	stopBG()
	log.Info("daemon stopped")
	return nil
}

// adminOptions resolves the admin token and refuses an admin listener that
// other machines can reach without one.
func adminOptions(f *runFlags, sec *secrets) (daemon.AdminOptions, error) {
	o := daemon.AdminOptions{Hosts: f.adminHosts}
	// The address the admin listener is bound to is a Host it answers.
	if host, _, err := net.SplitHostPort(f.adminAddr); err == nil && host != "" {
		if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
			o.Hosts = append(o.Hosts, host)
		}
	}
	if f.maxConns < 0 {
		return o, usageError("--max-conns must not be negative")
	}
	if f.adminToken != "" {
		v, ok := sec.Secret(f.adminToken)
		if !ok || v == "" {
			return o, usageError("--admin-token-secret %s: secret not set (set it in the environment or a --secrets-file)", f.adminToken)
		}
		o.Token = v
	}
	if o.Token == "" && !loopbackAddr(f.adminAddr) {
		return o, usageError("--admin-addr %s can be reached from other machines: give the admin endpoints a bearer token with --admin-token-secret NAME, or listen on 127.0.0.1", f.adminAddr)
	}
	return o, nil
}

// loopbackAddr reports whether a listen address accepts only local
// connections: a loopback IP or localhost, never an empty or wildcard host.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// planLoader is the reload path: the same loader as check and sync, with
// the command's base URL overrides, returning problems instead of printing.
func (a *app) planLoader(c *common) func() (*engine.Plan, error) {
	dir := a.specsDir(c)
	return func() (*engine.Plan, error) {
		plan, err := spec.Load(dir, spec.Options{})
		if err != nil {
			return nil, err
		}
		urls, err := a.baseURLs(c, plan)
		if err != nil {
			return nil, fmt.Errorf("the reloaded spec: %w", err)
		}
		plan, err = wire.Adjust(plan, wire.LoadOptions{BaseURLs: urls})
		if err != nil {
			return nil, fmt.Errorf("--base-url: the reloaded spec: %w", err)
		}
		return plan, nil
	}
}

// watchSpecs watches the CUE module the deployment belongs to (so shared
// lib/ packages count) or, outside a module, the deployment folder, and
// asks the daemon to reload after each burst of changes.
func (a *app) watchSpecs(ctx context.Context, wg *sync.WaitGroup, f *runFlags, plan *engine.Plan, d *daemon.Daemon, log interface {
	Info(string, ...any)
	Warn(string, ...any)
}) {
	root := moduleRoot(plan.Dir)
	opts := watch.Options{Dirs: []string{root}, Recursive: true, Poll: f.poll}
	w, err := watch.New(opts)
	if err != nil {
		poll := f.poll
		if poll <= 0 {
			poll = 10 * time.Second
		}
		log.Warn("cannot watch the spec folder; polling instead", "error", err, "every", poll)
		opts.NoEvents, opts.Poll = true, poll
		if w, err = watch.New(opts); err != nil {
			log.Warn("cannot poll the spec folder either; reload with SIGHUP", "error", err)
			return
		}
	}
	log.Info("watching specs", "folder", root, "poll", f.poll)
	wg.Add(2)
	go func() {
		defer wg.Done()
		w.Run(ctx)
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case paths := <-w.Changes():
				d.RequestReload(paths...)
			}
		}
	}()
}

// moduleRoot is the nearest folder above dir holding cue.mod, or dir.
func moduleRoot(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return dir
	}
	for d := abs; ; {
		if st, err := os.Stat(filepath.Join(d, "cue.mod")); err == nil && st.IsDir() {
			return d
		}
		parent := filepath.Dir(d)
		if parent == d {
			return abs
		}
		d = parent
	}
}

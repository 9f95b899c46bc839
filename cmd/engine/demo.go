package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"casesync/engine"
	"casesync/engine/spec"
	"casesync/internal/fakes/faults"
	"casesync/internal/redact"
	"casesync/internal/sandbox"
	"casesync/internal/wire"
	shipped "casesync/specs"
)

const demoLong = `Demo starts faithful fake Primero, OSCaR, PING and HIS servers on loopback ports,
seeds them with synthetic cases (invented people only; the deployments that
read Cambodia's MoSVY Primero get Cambodian cases only), points every shipped
deployment at them, and runs each pipeline once — chained pipelines after the
ones they follow — with a throwaway state file. Then it runs everything a
second time to show that an unchanged source writes nothing.

It prints, per pipeline, what was read, created, updated, left unchanged,
skipped (with reasons) and failed, and beside it what the fakes themselves
counted: the fakes are the ground truth, not the engine's own counters.

It runs the deployments under ./specs when there are any (a checkout), and
otherwise the shipped ones built into the binary, so an installed engine
runs it from any folder.

A deployment whose pipelines take records from a webhook inbox only
(Thailand's Sync button) runs under the daemon instead: the fake Primero's
webhooks point at its inbox, the deployment's webhook fixtures are posted,
Sync is pressed on more cases, and then once more on a synced case, which is
processed and answered again; the echo Primero fires after each of the
engine's own PATCHes reaches the inbox and is dropped.

Exit codes: 0 every run went through and the fakes counted no duplicate;
1 a run failed, a spec has problems, or a fake counted a duplicate; 2 usage
or I/O error.`

type demoFlags struct {
	specs      string
	specsGiven bool
	cases      int
	clients    int
	keepState  string
	logs       logFlags
	verbose    bool
	wait       time.Duration
}

func (a *app) demoCmd() *cobra.Command {
	var f demoFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the shipped deployments end to end against bundled fake servers",
		Long:  demoLong,
		Example: `  engine demo

  # More cases, and keep the state files to look at afterwards
  engine demo --cases 500 --keep-state /tmp/demo.db
  engine failures --state /tmp/demo-unhcr.db`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f.specsGiven = cmd.Flags().Changed("specs")
			return a.demo(cmd.Context(), f)
		},
	}
	cmd.Flags().StringVar(&f.specs, "specs", "specs", "folder of deployments to run (default ./specs, else the deployments built into the binary)")
	cmd.Flags().IntVar(&f.cases, "cases", 200, "synthetic Primero cases to seed")
	cmd.Flags().IntVar(&f.clients, "clients", 60, "synthetic OSCaR clients to seed")
	cmd.Flags().StringVar(&f.keepState, "keep-state", "", "keep each deployment's state file as PATH-DEPLOYMENT.db (e.g. /tmp/demo-unhcr.db) instead of in a temporary folder")
	f.logs.register(cmd.Flags(), "error")
	cmd.Flags().BoolVar(&f.verbose, "verbose", false, "also print the fakes' writes by kind")
	cmd.Flags().DurationVar(&f.wait, "wait", 0, "with --keep-state, when another engine process holds a state file, wait up to this long for it instead of refusing")
	return cmd
}

// demoStats is what one pass of the demo did to each target, by the
// engine's count and by the fakes' own.
type demoTotals struct {
	engineWrites map[string]int // connector → created+updated
	failed       int
}

func (a *app) demo(ctx context.Context, f demoFlags) error {
	tmp, err := os.MkdirTemp("", "casesync-demo-")
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	defer os.RemoveAll(tmp)
	where := f.specs
	dirs, err := spec.Deployments(f.specs)
	if (err != nil || len(dirs) == 0) && !f.specsGiven {
		// Not in a checkout (engine installed with go install, or run from
		// another folder): the shipped deployments are in the binary.
		f.specs = filepath.Join(tmp, "specs")
		if err := os.CopyFS(f.specs, shipped.FS); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("unpack the built-in deployments: %w", err)}
		}
		where = "the binary (no ./specs folder here)"
		dirs, err = spec.Deployments(f.specs)
	}
	if err != nil || len(dirs) == 0 {
		return &exitError{code: 2, err: fmt.Errorf("no deployments under %s", f.specs)}
	}
	w := a.stdout
	fmt.Fprintf(w, "casesync demo: every deployment under %s runs against its own fresh fake Primero (%d cases), OSCaR (%d clients) and PING.\n", where, f.cases, f.clients)
	var dups int64
	var failed bool
	for _, dir := range dirs {
		n, err := a.demoDeployment(ctx, f, dir, tmp)
		if err != nil {
			return err
		}
		if n < 0 {
			failed = true
		} else {
			dups += n
		}
	}
	fmt.Fprintf(w, "\nduplicates created at the fakes: %d\n", dups)
	fmt.Fprintln(w, `
next:
  engine check specs/                                   validate every shipped deployment
  engine dry-run PIPELINE --specs specs/DEPLOYMENT      preview writes (see engine fake to run a fake standalone)
  engine sync PIPELINE --specs specs/DEPLOYMENT         run one pipeline for real
  engine run --specs specs/DEPLOYMENT                   the daemon: schedules, hot reload, webhook inbox`)
	if failed {
		return &exitError{code: 1, err: fmt.Errorf("a pipeline run failed")}
	}
	// A duplicate at a fake is the one thing the engine promises never to
	// make: the demo fails on it, whatever else went well.
	if dups > 0 {
		return &exitError{code: 1, err: fmt.Errorf("the fakes counted %d duplicate(s)", dups)}
	}
	return nil
}

// demoMoSVY names the deployments that read Cambodia's MoSVY Primero,
// which holds Cambodian cases only. The ONA dashboard's label tables cover
// the option ids that instance uses; the mixed seed's UNHCR cases carry
// ids no table has, and would fail as lookup misses (the spec's tests
// cover that refusal).
var demoMoSVY = map[string]bool{"cambodia-ona": true}

// demoDeployment runs one deployment twice against its own fakes and
// returns the duplicates the fakes counted (-1 when a run failed).
func (a *app) demoDeployment(ctx context.Context, f demoFlags, dir, tmp string) (int64, error) {
	w := a.stdout
	plan, err := spec.Load(dir, spec.Options{})
	if err != nil {
		var ps spec.Problems
		if errors.As(err, &ps) {
			for _, p := range ps {
				fmt.Fprintln(a.stderr, p.String())
			}
			return 0, &exitError{code: 1, err: fmt.Errorf("%s has spec problems", dir)}
		}
		return 0, &exitError{code: 2, err: err}
	}
	_, usesHIS := plan.Connectors["his"]
	sb, err := sandbox.Start(sandbox.Options{Cases: f.cases, Clients: f.clients, Interventions: 20, Decisions: 10, Seed: 1,
		OSCaRAutoAccept: true, Consistent: true, PingStatusDelay: 20 * time.Millisecond, Thailand: usesHIS,
		MoSVY: demoMoSVY[plan.Name]})
	if err != nil {
		return 0, &exitError{code: 2, err: err}
	}
	defer sb.Close()
	urls := map[string]string{}
	for name, c := range plan.Connectors {
		if c.Kind == "sql" {
			continue // a demo database of its own, below
		}
		u, ok := sb.URLs[name]
		if !ok {
			return 0, &exitError{code: 1, err: fmt.Errorf("%s: the demo has no fake for connector %q", plan.Name, name)}
		}
		urls[name] = u
	}
	plan = plan.WithBaseURLs(urls)
	path := filepath.Join(tmp, plan.Name+".db")
	if f.keepState != "" {
		path = strings.TrimSuffix(f.keepState, ".db") + "-" + plan.Name + ".db"
	}
	var vals []string
	for _, n := range plan.Secrets {
		if v, ok := sb.Secret(n); ok {
			vals = append(vals, v)
		}
	}
	dbs, dsns, err := demoDatabases(plan, dir, path, sb)
	if err != nil {
		return 0, &exitError{code: 2, err: err}
	}
	red := redact.New(vals...)
	log := f.logs.newLogger(a.stderr, red)
	fmt.Fprintf(w, "\n%s (%s)\n", plan.Name, dir)
	if f.keepState != "" {
		fmt.Fprintf(w, "  state kept in %s — look with: engine failures --state %s\n", path, path)
	}
	if len(inboxOnly(plan)) > 0 {
		// Records arrive by webhook only: the daemon serves the inbox and
		// the fake sends what a user's actions would.
		failed, err := a.demoInbox(ctx, w, plan, sb, path, log)
		if err != nil {
			return 0, err
		}
		if failed {
			return -1, nil
		}
		return sb.Primero.Counters().Duplicates.Load(), nil
	}
	dep, err := wire.Open(plan, wire.Options{StatePath: path, StateWait: f.wait, Secrets: demoSecrets{sb, dsns}, Log: log})
	if err != nil {
		return 0, &exitError{code: 2, err: err}
	}
	defer dep.Close()
	runner := dep.Runner
	failed := false
	for pass := 1; pass <= 2; pass++ {
		if pass == 2 {
			fmt.Fprintln(w, "  second pass — nothing changed at the sources, so nothing should be written:")
		}
		fakeBefore := fakeWrites(sb)
		engineWrites := map[string]int{}
		ran := map[string]bool{}
		for _, name := range plan.RunOrder() {
			// The branches of a pipeline run together, over one listing.
			unit := plan.Unit(name)
			if ran[unit] {
				continue
			}
			ran[unit] = true
			results, err := runner.SyncUnit(ctx, unit, engine.SyncOptions{Trigger: "demo"})
			for _, res := range results {
				printDemoResult(w, res)
				for k, n := range res.Writes {
					engineWrites[k] += n
				}
				if res.Err != nil {
					fmt.Fprintf(w, "  %-28s run failed: %s\n", res.Pipeline, red.String(res.Err.Error()))
					failed = true
				}
			}
			if err != nil && len(results) == 0 {
				fmt.Fprintf(w, "  %-28s run failed: %s\n", unit, red.String(err.Error()))
				failed = true
			}
			if ctx.Err() != nil {
				return 0, &exitError{code: 1, err: ctx.Err()}
			}
		}
		after := fakeWrites(sb)
		var parts []string
		for _, sys := range []string{"primero", "oscar", "ping"} {
			if _, used := plan.Connectors[sys]; !used {
				continue
			}
			parts = append(parts, fmt.Sprintf("%s %d (engine's count %d)", sys, after[sys]-fakeBefore[sys], engineWrites[sys]))
		}
		fmt.Fprintf(w, "  writes applied, by the fakes' own count: %s\n", strings.Join(parts, ", "))
		if f.verbose {
			for _, fk := range []struct {
				name string
				c    *faults.Counters
			}{{"primero", sb.Primero.Counters()}, {"oscar", sb.Oscar.Counters()}, {"ping", sb.Ping.Counters()}} {
				if _, used := plan.Connectors[fk.name]; used {
					fmt.Fprintf(w, "    %s writes by kind so far: %v\n", fk.name, fk.c.Writes())
				}
			}
		}
	}
	if err := printDemoRows(ctx, w, plan, dbs); err != nil {
		return 0, &exitError{code: 2, err: err}
	}
	dups := sb.Primero.Counters().Duplicates.Load() + sb.Oscar.Counters().Duplicates.Load() + sb.Ping.Counters().Duplicates.Load()
	if failed {
		return -1, nil
	}
	return dups, nil
}

func printDemoResult(w io.Writer, res *engine.RunResult) {
	c := res.Counts
	fmt.Fprintf(w, "  %-28s read %4d  created %4d  updated %4d  unchanged %4d  skipped %4d  failed %3d\n",
		res.Pipeline, c.Read, c.Created, c.Updated, c.Unchanged, c.Skipped, c.Failed)
	reasons := engine.SortedReasons(res.Reasons)
	if len(reasons) > 0 {
		parts := make([]string, len(reasons))
		for i, r := range reasons {
			parts[i] = fmt.Sprintf("%s %d", r, res.Reasons[r])
		}
		fmt.Fprintf(w, "  %-28s reasons: %s\n", "", strings.Join(parts, ", "))
	}
}

func fakeWrites(sb *sandbox.Sandbox) map[string]int {
	return map[string]int{
		"primero": int(sb.Primero.Counters().TotalWrites()),
		"oscar":   int(sb.Oscar.Counters().TotalWrites()),
		"ping":    int(sb.Ping.Counters().TotalWrites()),
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"casesync/connectors/rest"
	"casesync/engine"
	"casesync/engine/spec"
	"casesync/internal/redact"
	"casesync/internal/sandbox"
	"casesync/internal/state"
)

const demoLong = `Demo starts faithful fake Primero, OSCaR and PING servers on loopback ports,
seeds them with synthetic cases (invented people only), points every shipped
deployment at them, and runs each pipeline once — chained pipelines after the
ones they follow — with a throwaway state file. Then it runs everything a
second time to show that an unchanged source writes nothing.

It prints, per pipeline, what was read, created, updated, left unchanged,
skipped (with reasons) and failed, and beside it what the fakes themselves
counted: the fakes are the ground truth, not the engine's own counters.`

type demoFlags struct {
	specs     string
	cases     int
	clients   int
	keepState string
	logLevel  string
}

func (a *app) demoCmd() *cobra.Command {
	var f demoFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the shipped deployments end to end against bundled fake servers",
		Long:  demoLong,
		Example: `  engine demo
  engine demo --cases 2000 --keep-state /tmp/demo.db`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.demo(cmd.Context(), f)
		},
	}
	cmd.Flags().StringVar(&f.specs, "specs", "specs", "folder of deployments to run")
	cmd.Flags().IntVar(&f.cases, "cases", 200, "synthetic Primero cases to seed")
	cmd.Flags().IntVar(&f.clients, "clients", 60, "synthetic OSCaR clients to seed")
	cmd.Flags().StringVar(&f.keepState, "keep-state", "", "write the state file here instead of a temporary folder")
	cmd.Flags().StringVar(&f.logLevel, "log-level", "error", "log level: debug, info, warn, error")
	return cmd
}

// demoStats is what one pass of the demo did to each target, by the
// engine's count and by the fakes' own.
type demoTotals struct {
	engineWrites map[string]int // connector → created+updated
	failed       int
}

func (a *app) demo(ctx context.Context, f demoFlags) error {
	dirs, err := spec.Deployments(f.specs)
	if err != nil || len(dirs) == 0 {
		return &exitError{code: 2, err: fmt.Errorf("no deployments under %s (run the demo from the repository root, or pass --specs)", f.specs)}
	}
	sb, err := sandbox.Start(sandbox.Options{Cases: f.cases, Clients: f.clients, Interventions: 20, Decisions: 10, Seed: 1,
		OSCaRAutoAccept: true, PingStatusDelay: 50 * time.Millisecond})
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	defer sb.Close()
	tmp, err := os.MkdirTemp("", "casesync-demo-")
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	defer os.RemoveAll(tmp)

	w := a.stdout
	fmt.Fprintf(w, "casesync demo: fake Primero %s (%d cases), OSCaR %s (%d clients), PING %s\n\n",
		sb.URLs["primero"], f.cases, sb.URLs["oscar"], f.clients, sb.URLs["ping"])

	type loaded struct {
		plan   *engine.Plan
		runner *engine.Runner
		store  *state.Store
		pool   *rest.Pool
	}
	var deps []loaded
	defer func() {
		for _, d := range deps {
			d.pool.Close()
			d.store.Close()
		}
	}()
	for _, dir := range dirs {
		plan, err := spec.Load(dir, spec.Options{})
		if err != nil {
			var ps spec.Problems
			if errors.As(err, &ps) {
				for _, p := range ps {
					fmt.Fprintln(a.stderr, p.String())
				}
				return &exitError{code: 1, err: fmt.Errorf("%s has spec problems", dir)}
			}
			return &exitError{code: 2, err: err}
		}
		urls := map[string]string{}
		for name := range plan.Connectors {
			u, ok := sb.URLs[name]
			if !ok {
				return &exitError{code: 1, err: fmt.Errorf("%s: the demo has no fake for connector %q", plan.Name, name)}
			}
			urls[name] = u
		}
		plan = plan.WithBaseURLs(urls)
		path := filepath.Join(tmp, plan.Name+".db")
		if f.keepState != "" {
			path = f.keepState
			if len(dirs) > 1 {
				path = strings.TrimSuffix(f.keepState, ".db") + "-" + plan.Name + ".db"
			}
		}
		st, err := state.Open(path)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		var vals []string
		for _, n := range plan.Secrets {
			if v, ok := sb.Secret(n); ok {
				vals = append(vals, v)
			}
		}
		red := redact.New(vals...)
		var lvl slog.Level
		_ = lvl.UnmarshalText([]byte(f.logLevel))
		log := slog.New(redact.Handler(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: lvl}), red))
		pool, err := rest.NewPool(plan, sb, rest.Options{Logger: log})
		if err != nil {
			st.Close()
			return &exitError{code: 2, err: err}
		}
		deps = append(deps, loaded{plan, engine.NewRunner(plan, poolCallers{pool}, st, engine.SystemClock{}, log), st, pool})
	}

	before := fakeWrites(sb)
	var firstFailed int
	for pass := 1; pass <= 2; pass++ {
		if pass == 2 {
			fmt.Fprintln(w, "\nsecond pass (nothing changed at the sources, so nothing should be written):")
		}
		passBefore := fakeWrites(sb)
		tot := demoTotals{engineWrites: map[string]int{}}
		for _, d := range deps {
			fmt.Fprintf(w, "%s\n", d.plan.Name)
			for _, name := range runOrder(d.plan) {
				res, err := d.runner.Sync(ctx, name, engine.SyncOptions{Trigger: "demo"})
				if res != nil {
					printDemoResult(w, res)
					tgt := d.plan.Pipelines[name].Upsert.Connector
					tot.engineWrites[tgt] += res.Counts.Created + res.Counts.Updated
					tot.failed += res.Counts.Failed
				}
				if err != nil {
					fmt.Fprintf(w, "  %-28s run failed: %v\n", name, err)
					tot.failed++
				}
				if ctx.Err() != nil {
					return &exitError{code: 1, err: ctx.Err()}
				}
			}
		}
		after := fakeWrites(sb)
		fmt.Fprintln(w, "  fakes' own count of applied writes this pass:")
		for _, sys := range []string{"primero", "oscar", "ping"} {
			fmt.Fprintf(w, "    %-8s %4d writes by the fake's count, %4d by the engine's\n", sys, after[sys]-passBefore[sys], tot.engineWrites[sys])
		}
		if pass == 1 {
			firstFailed = tot.failed
		}
	}
	final := fakeWrites(sb)
	fmt.Fprintf(w, "\nduplicates created at the fakes: %d\n", sb.Primero.Counters().Duplicates.Load()+sb.Oscar.Counters().Duplicates.Load()+sb.Ping.Counters().Duplicates.Load())
	_ = before
	_ = final
	_ = firstFailed
	fmt.Fprintln(w, `
next:
  engine check specs/                                   validate every shipped deployment
  engine dry-run PIPELINE --specs specs/DEPLOYMENT      preview writes against a live source
  engine sync PIPELINE --specs specs/DEPLOYMENT         run one pipeline for real`)
	return nil
}

// runOrder lists pipelines that start on their own (not chained), sorted,
// each followed by the pipelines chained after it.
func runOrder(p *engine.Plan) []string {
	var out []string
	seen := map[string]bool{}
	var visit func(n string)
	visit = func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		out = append(out, n)
		for _, m := range p.Order {
			for _, after := range p.Pipelines[m].Spec.Trigger.After {
				if after == n {
					visit(m)
				}
			}
		}
	}
	for _, n := range p.Order {
		if len(p.Pipelines[n].Spec.Trigger.After) == 0 {
			visit(n)
		}
	}
	return out
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

var _ = sort.Strings

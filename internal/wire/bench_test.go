package wire_test

import (
	"context"
	"path/filepath"
	"testing"

	"casesync/engine/spec"
	"casesync/internal/sandbox"
	"casesync/internal/testenv"
	"casesync/internal/wire"
)

// BenchmarkMapping_Stages runs the runner's own select stage (filters,
// fan-out) and map stage (engine.Preparer) on Cambodia flow 1 over
// synthetic Primero cases, enriched over HTTP first and untimed: the path a
// sync takes, minus the requests. One op is one source record.
//
//	go test -run '^$' -bench Mapping_Stages -benchmem ./internal/wire
func BenchmarkMapping_Stages(b *testing.B) {
	ctx := context.Background()
	sb, err := sandbox.Start(sandbox.Options{Cases: 2000, Clients: 10, Seed: 11})
	if err != nil {
		b.Fatal(err)
	}
	defer sb.Close()
	root := testenv.RepoRoot(b)
	plan, err := wire.Load(filepath.Join(root, "specs", "cambodia"), wire.LoadOptions{Spec: spec.Options{Cwd: root}})
	if err != nil {
		b.Fatal(err)
	}
	urls := map[string]string{}
	for name := range plan.Connectors {
		urls[name] = sb.URLs[name]
	}
	if plan, err = wire.Adjust(plan, wire.LoadOptions{BaseURLs: urls}); err != nil {
		b.Fatal(err)
	}
	dep, err := wire.Open(plan, wire.Options{StatePath: filepath.Join(b.TempDir(), "state.db"), Secrets: sb})
	if err != nil {
		b.Fatal(err)
	}
	defer dep.Close()
	pr, err := dep.Runner.Preparer(ctx, "f1_referrals_to_oscar")
	if err != nil {
		b.Fatal(err)
	}
	var recs []any
	for _, c := range sb.Primero.Cases() {
		recs = append(recs, any(c))
	}
	if recs, err = pr.Enrich(ctx, recs); err != nil {
		b.Fatal(err)
	}
	payloads := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		n, _ := pr.Map(ctx, recs[i%len(recs)])
		payloads += n
	}
	if payloads == 0 {
		b.Fatal("no record was mapped: the benchmark would measure filters only")
	}
}

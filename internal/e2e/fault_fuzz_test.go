package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"casesync/engine"
	"casesync/engine/mapping"
	"casesync/engine/spec"
	"casesync/internal/testenv"
)

// FuzzRecordMapping pushes arbitrary JSON objects through the example
// pipeline's select and map stages (engine's Preparer, no I/O), seeded from the
// Primero API fixtures. The property (issue 11, style §5): no panic, and
// every error names the field it failed on, the filter, or the record key.
//
//	go test ./internal/e2e -run '^$' -fuzz FuzzRecordMapping -fuzztime 60s
func FuzzRecordMapping(f *testing.F) {
	plan, err := spec.Load(filepath.Join(testenv.RepoRoot(f), "specs", "example"), spec.Options{})
	if err != nil {
		f.Fatal(err)
	}
	const pipeline = "cases_to_oscar"
	m, err := engine.NewRunner(plan, nil, nil, nil, nil).Preparer(context.Background(), pipeline)
	if err != nil {
		f.Fatal(err)
	}
	p := plan.Pipelines[pipeline]
	// "source.key": a record whose key program yields nothing has no key to
	// name, so its error names the spec part that failed instead.
	names := []string{"each:", "source.key"}
	for _, fl := range p.Filters {
		names = append(names, fl.Reason)
	}
	for _, fd := range p.Map.Fields {
		names = append(names, fd.Name)
	}

	for _, rec := range faultFixtureRecords(f) {
		b, err := json.Marshal(rec)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"id":"k1","consent_for_services":true,"services_section":[{"service_response_type":"referral_to_oscar"}]}`))
	f.Add([]byte(`{"id":"k2","consent_for_services":true,"services_section":"x"}`))
	f.Add([]byte(`{"id":"k3","consent_for_services":true,"services_section":[{"service_response_type":"referral_to_oscar","service_subtype":7}],"date_of_birth":"2015-13-45"}`))

	f.Fuzz(func(t *testing.T, data []byte) {
		var rec map[string]any
		if err := json.Unmarshal(data, &rec); err != nil || rec == nil {
			return // the property is about objects; the decoder is not ours
		}
		ctx, cancel := context.WithTimeout(context.Background(), faultFuzzDeadline)
		defer cancel()
		_, err := m.Map(ctx, rec)
		if err == nil || ctx.Err() != nil {
			return
		}
		msg := err.Error()
		var fe *mapping.FieldError
		if errors.As(err, &fe) && fe.Field != "" {
			return
		}
		key, _ := rec["id"].(string)
		if key != "" && strings.Contains(msg, key) {
			return
		}
		for _, n := range names {
			if strings.Contains(msg, n) {
				return
			}
		}
		t.Errorf("error names no field, filter or record key: %q (record %s)", msg, data)
	})
}

// faultFuzzDeadline bounds one record's mapping, as the runner's page
// deadline does.
const faultFuzzDeadline = 5 * time.Second

// faultFixtureRecords reads testdata/fault_primero_cases, copies of the
// shared Primero API case fixtures: every object in a data array, a data
// object, or the file's own object.
func faultFixtureRecords(tb testing.TB) []map[string]any {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "fault_primero_cases", "*.json"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no Primero fixtures found: %v", err)
	}
	var out []map[string]any
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			tb.Fatal(err)
		}
		var v any
		if json.Unmarshal(b, &v) != nil {
			continue
		}
		obj, _ := v.(map[string]any)
		switch d := obj["data"].(type) {
		case []any:
			for _, e := range d {
				if m, ok := e.(map[string]any); ok {
					out = append(out, m)
				}
			}
		case map[string]any:
			out = append(out, d)
		default:
			if obj != nil {
				out = append(out, obj)
			}
		}
	}
	return out
}

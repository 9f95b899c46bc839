package mapping_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"casesync/engine/mapping"
)

// TestLimits_StopRunawayPrograms: a jq program that spins or builds too
// much, and an expr program past expr's budget, fail with an EvalError
// carrying eval_timeout or eval_too_large; a caller's own cancellation is
// not reported as a timeout; programs within the limits are untouched.
func TestLimits_StopRunawayPrograms(t *testing.T) {
	reg := mapping.NewRegistry()
	reg.SetLimits(mapping.Limits{Timeout: 100 * time.Millisecond, MaxBytes: 64 << 10})
	// The size cases get a deadline they cannot reach on a loaded machine
	// (under -race, [range(100000)] can take longer than 100ms), so only
	// the size cap can stop them.
	sizeReg := mapping.NewRegistry()
	sizeReg.SetLimits(mapping.Limits{Timeout: time.Hour, MaxBytes: 64 << 10})
	tests := []struct {
		name, src string
		all       bool // evaluate with All instead of One
		want      string
	}{
		{"spins", "last(repeat(1))", false, mapping.ReasonEvalTimeout},
		{"endless range", "[range(1e9)]", false, mapping.ReasonEvalTimeout},
		{"huge array", "[range(100000)]", false, mapping.ReasonEvalTooLarge},
		{"huge string", `"x" * 200000`, false, mapping.ReasonEvalTooLarge},
		{"huge object", `[range(20000) | {key: tostring, value: .}] | from_entries`, false, mapping.ReasonEvalTooLarge},
		{"one of many too large", `1, [range(100000)]`, true, mapping.ReasonEvalTooLarge},
		{"within the limits", "[range(1000)] | length", false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := reg
			if tc.want != mapping.ReasonEvalTimeout {
				r = sizeReg
			}
			j, err := mapping.CompileJQ(tc.src, r)
			if err != nil {
				t.Fatal(err)
			}
			if tc.all {
				_, err = j.All(context.Background(), nil, &mapping.Vars{})
			} else {
				_, err = j.One(context.Background(), nil, &mapping.Vars{})
			}
			var ee *mapping.EvalError
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tc.want != "" && (!errors.As(err, &ee) || ee.Reason != tc.want):
				t.Fatalf("err = %v, want an EvalError %s", err, tc.want)
			}
		})
	}

	t.Run("a mapping shares one deadline", func(t *testing.T) {
		spin, err := mapping.CompileJQ("last(repeat(1))", reg)
		if err != nil {
			t.Fatal(err)
		}
		m := &mapping.Mapping{Limits: reg.Limits(), Fields: []mapping.Field{{Name: "a", Value: &mapping.Value{JQ: spin}}}}
		_, err = m.Apply(context.Background(), map[string]any{}, &mapping.Vars{})
		var ee *mapping.EvalError
		if !errors.As(err, &ee) || ee.Reason != mapping.ReasonEvalTimeout {
			t.Fatalf("Apply = %v, want eval_timeout", err)
		}
	})

	t.Run("the caller's cancellation is not a timeout", func(t *testing.T) {
		long := mapping.NewRegistry()
		long.SetLimits(mapping.Limits{Timeout: time.Hour})
		j, _ := mapping.CompileJQ("last(repeat(1))", long)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(20*time.Millisecond, cancel)
		_, err := j.One(ctx, nil, &mapping.Vars{})
		var ee *mapping.EvalError
		if err == nil || errors.As(err, &ee) {
			t.Fatalf("err = %v, want a plain cancellation", err)
		}
	})

	t.Run("the caller's own deadline is not a timeout", func(t *testing.T) {
		long := mapping.NewRegistry()
		long.SetLimits(mapping.Limits{Timeout: time.Hour})
		j, _ := mapping.CompileJQ("last(repeat(1))", long)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		_, err := j.One(ctx, nil, &mapping.Vars{})
		var ee *mapping.EvalError
		if err == nil || errors.As(err, &ee) {
			t.Fatalf("err = %v, want the caller's deadline, not eval_timeout", err)
		}
	})

	t.Run("a limit nearer than the caller's deadline is a timeout", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		j, err := mapping.CompileJQ("last(repeat(1))", reg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = j.One(ctx, nil, &mapping.Vars{})
		var ee *mapping.EvalError
		if !errors.As(err, &ee) || ee.Reason != mapping.ReasonEvalTimeout {
			t.Fatalf("err = %v, want eval_timeout", err)
		}
	})

	t.Run("expr past its budget", func(t *testing.T) {
		e, err := mapping.CompileExpr("len(1..100000000)", mapping.ExprAny, reg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.Run(mapping.ExprEnvFor(map[string]any{}, &mapping.Vars{}))
		var ee *mapping.EvalError
		if !errors.As(err, &ee) || ee.Reason != mapping.ReasonEvalTooLarge {
			t.Fatalf("err = %v, want eval_too_large", err)
		}
	})
}

package engine

import (
	"strings"
	"testing"
)

func TestCrash_Parse(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]int64
		wantErr string
	}{
		{in: ""},
		{in: "after-write:17", want: map[string]int64{CrashAfterWrite: 17}},
		{in: " mid-page:3 , after-commit:1", want: map[string]int64{CrashMidPage: 3, CrashAfterCommit: 1}},
		{in: "before-commit:0", wantErr: "N >= 1"},
		{in: "after-write", wantErr: "POINT:N"},
		{in: "after-wrote:2", wantErr: "unknown point"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			h, err := parseCrash(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), CrashEnv) {
					t.Fatalf("parseCrash(%q) = %v, want an error naming %s with %q", tc.in, err, CrashEnv, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == nil {
				if h != nil {
					t.Fatalf("parseCrash(%q) = %+v, want nil", tc.in, h)
				}
				return
			}
			if len(h.at) != len(tc.want) {
				t.Fatalf("points %v, want %v", h.at, tc.want)
			}
			for k, v := range tc.want {
				if h.at[k] != v {
					t.Errorf("point %s at %d, want %d", k, h.at[k], v)
				}
			}
		})
	}
}

// TestCrash_KillsAtTheNthHit counts per point and kills exactly once, at
// the chosen occurrence; a nil hook is inert.
func TestCrash_KillsAtTheNthHit(t *testing.T) {
	var nilHook *crashHook
	nilHook.hit(CrashAfterWrite) // must not panic

	h, err := parseCrash("after-write:3,before-commit:1")
	if err != nil {
		t.Fatal(err)
	}
	var kills []string
	point := ""
	h.kill = func() { kills = append(kills, point) }
	for _, p := range []string{CrashAfterWrite, CrashMidPage, CrashAfterWrite, CrashAfterWrite, CrashAfterWrite, CrashBeforeCommit, CrashBeforeCommit} {
		point = p
		h.hit(p)
	}
	if want := []string{CrashAfterWrite, CrashBeforeCommit}; strings.Join(kills, ",") != strings.Join(want, ",") {
		t.Errorf("kills at %v, want %v", kills, want)
	}
}

func TestRunFatal(t *testing.T) {
	tests := []struct {
		name  string
		class Class
		err   error
		want  bool
	}{
		{"config", ClassConfig, &MissingSecretError{}, true},
		{"refused login", ClassAuth, &RemoteError{Class: ClassAuth, Status: 401}, true},
		{"403 on one record", ClassAuth, &RemoteError{Class: ClassAuth, Status: 403}, false},
		{"retryable", ClassRetryable, &RemoteError{Class: ClassRetryable, Status: 503}, false},
		{"data", ClassData, nil, false},
		{"permanent", ClassPermanent, &RemoteError{Class: ClassPermanent, Status: 422}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := runFatal(tc.class, tc.err); got != tc.want {
				t.Errorf("runFatal = %v, want %v", got, tc.want)
			}
		})
	}
}

package faults

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWrap_RetryAfter(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"default", Config{Rate429: 1}, "1"},
		{"seconds", Config{Rate429: 1, RetryAfter: 3}, "3"},
		{"verbatim", Config{Rate429: 1, RetryAfter: 3, RetryAfterHeader: "0"}, "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := New(tc.cfg)
			rec := httptest.NewRecorder()
			in.Wrap(ok).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil))
			if rec.Code != http.StatusTooManyRequests {
				t.Fatalf("status %d, want 429", rec.Code)
			}
			if got := rec.Header().Get("Retry-After"); got != tc.want {
				t.Errorf("Retry-After %q, want %q", got, tc.want)
			}
			if n := in.Counters().Injected429.Load(); n != 1 {
				t.Errorf("Injected429 = %d, want 1", n)
			}
		})
	}
}

// Methods limits the faults to the methods named: the others reach the
// handler untouched.
func TestWrap_Methods(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	in := New(Config{Rate500: 1, Methods: []string{http.MethodPost}})
	for method, want := range map[string]int{http.MethodGet: http.StatusOK, http.MethodPost: http.StatusInternalServerError} {
		rec := httptest.NewRecorder()
		in.Wrap(ok).ServeHTTP(rec, httptest.NewRequest(method, "/x", nil))
		if rec.Code != want {
			t.Errorf("%s: status %d, want %d", method, rec.Code, want)
		}
	}
	if n := in.Counters().Injected500.Load(); n != 1 {
		t.Errorf("Injected500 = %d, want 1", n)
	}
}

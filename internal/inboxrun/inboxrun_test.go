package inboxrun_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"casesync/engine/spec"
	"casesync/internal/inboxrun"
)

const dedupeSpec = `package hook

secrets: ["HOOK_KEY"]
connectors: api: base_url: "http://placeholder.invalid"
pipelines: p: {
	trigger: inbox: {
		path: "/hook"
		secret: {secret: "HOOK_KEY"}
		key: "."
		// The sender's own delivery id: a redelivery carries the same one.
		dedupe: {id: ".headers[\"x-delivery-id\"]", window: "1h"}
	}
	source: {connector: "api", listing: false, key: ".id"}
	map: id: jq: ".id"
	upsert: {connector: "api", key: ".id", idempotent: true, unchanged: "never", create: {method: "PUT", path: "/items/{.id}", body: jq: "."}}
}
`

type secrets map[string]string

func (s secrets) Secret(n string) (string, bool) { v, ok := s[n]; return v, ok }

// De-duplication by the sender's delivery id: the same id is a duplicate
// whatever the body, another id is a new delivery even with the same body.
func TestInbox_DedupeByDeliveryID(t *testing.T) {
	var puts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		puts.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hook.cue"), []byte(dedupeSpec), 0o600); err != nil {
		t.Fatal(err)
	}
	plan, err := spec.Load(dir, spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	plan = plan.WithBaseURLs(map[string]string{"api": srv.URL})
	in, err := inboxrun.Start(inboxrun.Options{Plan: plan, Secrets: secrets{"HOOK_KEY": "k"}, StatePath: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	ctx := context.Background()
	tests := []struct {
		id, body string
		want     int
	}{
		{"d-1", `{"id":"a"}`, http.StatusAccepted},
		{"d-1", `{"id":"a","again":true}`, http.StatusOK}, // a redelivery: duplicate
		{"d-2", `{"id":"a"}`, http.StatusAccepted},        // the same body, a new delivery
	}
	for _, tc := range tests {
		st, err := in.Post(ctx, "/hook", http.Header{"X-Casesync-Secret": {"k"}, "X-Delivery-Id": {tc.id}}, []byte(tc.body))
		if err != nil || st != tc.want {
			t.Fatalf("delivery %s %s: %d %v, want %d", tc.id, tc.body, st, err, tc.want)
		}
		if err := in.Settle(ctx, "p", func() {}, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if got := puts.Load(); got != 2 {
		t.Errorf("writes = %d, want 2 (one per delivery, none for the duplicate)", got)
	}
	st, _ := in.Post(ctx, "/hook", http.Header{"X-Casesync-Secret": {"k"}}, []byte(`{"id":"b"}`))
	if st != http.StatusUnprocessableEntity {
		t.Errorf("a delivery without its id: %d, want 422", st)
	}
}

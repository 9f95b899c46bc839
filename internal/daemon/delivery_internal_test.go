package daemon

import (
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"

	"casesync/engine"
)

// What filters see of a delivery: its query and headers, never a
// credential — the inbox's own secret and signature headers, the usual
// auth headers, and any name that says credential.
func TestDeliveryMeta_NoCredentials(t *testing.T) {
	r := httptest.NewRequest("POST", "/inbox/x?event=case.post&access_token=t0k&hisToken=x&page=2", nil)
	for k, v := range map[string]string{
		"X-Api-Key": "k", "Authorization": "Basic abc", "Cookie": "s=1", "X-Casesync-Secret": "s",
		"X-Sig": "sha256=00", "X-Sig-Time": "1", "X-Request-Id": "d-1", "Content-Type": "application/json",
		"X-Auth-Token": "t", "Cache-Control": "no-cache",
	} {
		r.Header.Set(k, v)
	}
	in := &engine.Inbox{Header: "X-Casesync-Secret", HMAC: &engine.InboxHMAC{SignatureHeader: "X-Sig", TimestampHeader: "X-Sig-Time"}}
	got := deliveryMeta(r, in)
	want := deliveryEnvelope{
		Query:   map[string]any{"event": "case.post", "page": "2"},
		Headers: map[string]any{"x-request-id": "d-1", "content-type": "application/json", "cache-control": "no-cache"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("envelope (-want +got):\n%s", diff)
	}
}

package rest_test

import (
	"strings"
	"testing"

	"casesync/connectors/rest"
)

// Error bodies in the shapes the systems we reach send (see
// shared/reference/*.md): the server's words are kept, record content is not.
func TestServerMessage(t *testing.T) {
	long := strings.Repeat("x", 400)
	tests := []struct {
		name   string
		status int
		ctype  string
		body   string
		want   string
	}{
		{"errors[] message and detail", 404, "", `{"errors":[{"status":404,"resource":"/api/v2/cases/abc","message":"Not Found","detail":"Couldn't find Child with 'id'=abc"}]}`, "Not Found: Couldn't find Child with 'id'=abc"},
		{"errors[] detail is a JSON-pointer list", 422, "", `{"errors":[{"status":422,"resource":"/api/v2/cases","message":"Invalid Record JSON","detail":["/age","/services_section/0/unique_id"]}]}`, "Invalid Record JSON: /age, /services_section/0/unique_id"},
		{"errors[] message is a list of keys", 422, "", `{"errors":[{"status":422,"detail":"consent","message":["transition.errors.consent"]}]}`, "transition.errors.consent: consent"},
		{"5xx free-text detail is dropped", 500, "", `{"errors":[{"status":500,"message":"Internal Server Error","detail":"PG::UniqueViolation: Key (name)=(Jane Doe)"}]}`, "Internal Server Error"},
		{"error string", 401, "", `{"error":"Invalid User name or password."}`, "Invalid User name or password."},
		{"errors string list", 401, "", `{"success":false,"errors":["Invalid login credentials. Please try again."]}`, "Invalid login credentials. Please try again."},
		{"message keyed by field; other members unread", 422, "", `{"external_id":"f4dfa91e","given_name":"Jane","message":{"services":["can't be blank"],"gender":["can't be blank"]}}`, "gender: can't be blank; services: can't be blank"},
		{"message plus errors keyed by field", 422, "", `{"external_id":"f4dfa91e","message":"Record was found.","errors":{"global_id":"global_id must exist.","referral_status":"referral_status must be present."}}`, "Record was found.; global_id: global_id must exist.; referral_status: referral_status must be present."},
		{"error plus message", 422, "", `{"error":"Referral not found","message":"Record error. Please check the logs for details."}`, "Record error. Please check the logs for details.; Referral not found"},
		{"ErrorMessage", 400, "", `{"Data":null,"ErrorMessage":"Undefined parameter {x}","RecordCount":null}`, "Undefined parameter {x}"},
		{"gateway statusCode and message", 429, "", `{"statusCode":429,"message":"Rate limit is exceeded. Try again in 7 seconds."}`, "Rate limit is exceeded. Try again in 7 seconds."},
		{"oauth error and description", 400, "", `{"error":"invalid_grant","error_description":"AADB2C90225: The username or password is invalid."}`, "invalid_grant; AADB2C90225: The username or password is invalid."},
		{"error object", 400, "", `{"error":{"code":"BadRequest","message":"bad filter"}}`, "bad filter"},
		{"html page", 500, "text/html", `<!DOCTYPE html><html><body>We're sorry, but something went wrong. Jane Doe</body></html>`, "HTML error page"},
		{"plain text first line", 429, "text/plain", "Retry later\n", "Retry later"},
		{"a JSON string", 400, "", `"bad request"`, "bad request"},
		{"unknown shape says nothing", 400, "", `{"data":{"name":"Jane Doe","age":12}}`, ""},
		{"empty", 500, "", ``, ""},
		{"truncated", 400, "", `{"message":"` + long + `"}`, strings.Repeat("x", 300) + "…"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := rest.ServerMessage(tc.status, tc.ctype, []byte(tc.body)); got != tc.want {
				t.Errorf("message = %q\nwant      %q", got, tc.want)
			}
		})
	}
}

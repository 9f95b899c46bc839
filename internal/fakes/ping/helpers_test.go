package ping_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"casesync/internal/fakes/ping"
)

// fakeClock is a settable clock for token expiry and async timing.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// client talks to a fake PING the way a connector would.
type client struct {
	tb    testing.TB
	base  string
	key   string
	token string
}

// start serves a fake built from opts and returns it with a logged-in client.
func start(tb testing.TB, opts ping.Options) (*ping.Server, *client) {
	tb.Helper()
	srv := ping.New(opts)
	ts := httptest.NewServer(srv)
	tb.Cleanup(ts.Close)
	c := &client{tb: tb, base: ts.URL, key: ping.DefaultSubscriptionKey}
	if opts.SubscriptionKey != "" {
		c.key = opts.SubscriptionKey
	}
	c.token = c.login()
	return srv, c
}

func goodTokenForm() url.Values {
	return url.Values{
		"username":      {ping.DefaultUsername},
		"password":      {ping.DefaultPassword},
		"grant_type":    {"password"},
		"scope":         {ping.DefaultScope},
		"client_id":     {ping.DefaultClientID},
		"response_type": {"token"},
	}
}

func (c *client) tokenRequest(form url.Values) (int, map[string]any) {
	c.tb.Helper()
	req, err := http.NewRequest(http.MethodPost, c.base+ping.TokenPath, strings.NewReader(form.Encode()))
	if err != nil {
		c.tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "x-ms-cpim-geo", Value: "EU"})
	return c.do(req)
}

func (c *client) login() string {
	c.tb.Helper()
	st, body := c.tokenRequest(goodTokenForm())
	if st != http.StatusOK {
		c.tb.Fatalf("login: status %d, body %v", st, body)
	}
	return body["access_token"].(string)
}

func (c *client) do(req *http.Request) (int, map[string]any) {
	c.tb.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.tb.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.tb.Fatalf("read %s: %v", req.URL.Path, err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		c.tb.Fatalf("%s %s: answer is not a JSON object (%v): %s", req.Method, req.URL.Path, err, raw)
	}
	return resp.StatusCode, out
}

// post sends body (marshalled unless it is a string) with the gateway
// headers a connector sends.
func (c *client) post(path string, body any) (int, map[string]any) {
	c.tb.Helper()
	return c.postWith(path, body, nil)
}

func (c *client) postWith(path string, body any, edit func(*http.Request)) (int, map[string]any) {
	c.tb.Helper()
	var raw []byte
	switch b := body.(type) {
	case string:
		raw = []byte(b)
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			c.tb.Fatal(err)
		}
	}
	req, err := http.NewRequest(http.MethodPost, c.base+path, bytes.NewReader(raw))
	if err != nil {
		c.tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Ocp-Apim-Subscription-Key", c.key)
	req.Header.Set("Authorization", "Bearer "+c.token)
	if edit != nil {
		edit(req)
	}
	return c.do(req)
}

func retrieveBody(shp string, params ...string) map[string]any {
	qp := []any{}
	for i := 0; i+1 < len(params); i += 2 {
		qp = append(qp, map[string]any{"ParameterName": params[i], "Value": params[i+1]})
	}
	return map[string]any{
		"ShippingProcessId": shp,
		"PartnerId":         ping.DefaultPartnerID,
		"InteropID":         ping.DefaultInteropID,
		"APIVersion":        "V3",
		"QueryParameters":   qp,
	}
}

// retrieve posts a retrieve and fails the test unless it answers 200.
func (c *client) retrieve(shp string, params ...string) map[string]any {
	c.tb.Helper()
	st, body := c.post(ping.RetrievePath, retrieveBody(shp, params...))
	if st != http.StatusOK {
		c.tb.Fatalf("retrieve %s: status %d, body %v", shp, st, body)
	}
	return body
}

// rows returns Data as rows, treating the empty answers as none.
func rows(tb testing.TB, body map[string]any) []map[string]any {
	tb.Helper()
	switch d := body["Data"].(type) {
	case nil, string:
		return nil
	case []any:
		out := make([]map[string]any, len(d))
		for i, r := range d {
			out[i] = r.(map[string]any)
		}
		return out
	default:
		tb.Fatalf("Data is %T", d)
		return nil
	}
}

// retrieveAll walks every page of a retrieve with the paging contract.
func (c *client) retrieveAll(shp string, params ...string) (all []map[string]any, pages int) {
	c.tb.Helper()
	body := retrieveBody(shp, params...)
	for {
		st, resp := c.post(ping.RetrievePath, body)
		if st != http.StatusOK {
			c.tb.Fatalf("retrieve %s page %d: status %d, %v", shp, pages+1, st, resp)
		}
		pages++
		all = append(all, rows(c.tb, resp)...)
		ps := resp["PagingSummary"].(map[string]any)
		if ps["IsMoreRecordsAvailable"] != true {
			return all, pages
		}
		body["PagingCookie"] = ps["PagingCookie"]
		body["PageNumber"] = ps["PageNumber"].(float64) + 1
		if pages > 10000 {
			c.tb.Fatal("paging does not end")
		}
	}
}

func ingestPath(partner, op string) string { return ping.IngestionPathPrefix + partner + "/" + op }

func fields(kv ...any) []any {
	var out []any
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, map[string]any{"Name": kv[i], "Value": kv[i+1]})
	}
	return out
}

func syncBody(shp string, items ...map[string]any) map[string]any {
	data := make([]any, len(items))
	for i, it := range items {
		data[i] = it
	}
	return map[string]any{"ShippingProcessId": shp, "InteropId": ping.DefaultInteropID, "Data": data}
}

// ingest posts a sync ingestion and returns the per-item statuses.
func (c *client) ingest(shp string, items ...map[string]any) []string {
	c.tb.Helper()
	st, resp := c.post(ingestPath(ping.DefaultPartnerID, "data"), syncBody(shp, items...))
	if st != http.StatusOK {
		c.tb.Fatalf("ingest %s: status %d, %v", shp, st, resp)
	}
	var out []string
	for _, it := range resp["Data"].([]any) {
		out = append(out, it.(map[string]any)["Status"].(string))
	}
	return out
}

func ackItem(id string, status string) map[string]any {
	return map[string]any{
		"ExternalId": id,
		"Fields": fields(
			"progres_lpinterventionid", id,
			"progres_businessunit", ping.DefaultBusinessUnitID,
			"progres_primerotransferstatus", status,
			"progres_primerotransferstatusdate", "2026-06-01",
		),
	}
}

// referralFields are the 24 SHP-2731 fields of a valid Flow 2.1 referral.
func referralFields(caseID, serviceID string) map[string]any {
	return map[string]any{
		"progres_externalguid":           "6a3f0e52-4d5b-4c8e-9a1f-2b3c4d5e6f70",
		"progres_externalid":             caseID,
		"progres_businessunit":           ping.DefaultBusinessUnitID,
		"progres_organizationfrom":       ping.DefaultOrganizationFromID,
		"progres_orgreferredby":          "Primero CP",
		"progres_orgposition":            "CPIMS+ Administrator",
		"progres_orgemail":               "notavailable@primero.org",
		"progres_orgphonenumber":         "0000000000",
		"progres_orgreferralid":          serviceID,
		"progres_referraldate":           "2026-05-20",
		"progres_otherrequestedservices": nil,
		"progres_requestedservice":       "7ad37dd0-0306-e611-80d9-00155d34051a",
		"progres_spneedcategory":         nil,
		"progres_reasonforreferral":      "Primero referral",
		"progres_pocphonenumber":         nil,
		"progres_pocaddress":             "Zone A",
		"progres_pocotheridnumber":       "900-26-3000001",
		"progres_pocdateofbirth":         "2015-03-04",
		"progres_pocsex":                 "125080000",
		"progres_poclastname":            "Tavomi",
		"progres_pocmiddlename":          nil,
		"progres_pocfirstname":           "Kelo",
		"progres_unhcrid":                "900-300000001",
		"progres_offlineid":              caseID,
	}
}

func asyncBody(caseID string, f map[string]any) map[string]any {
	var fl []any
	for k, v := range f {
		fl = append(fl, map[string]any{"Name": k, "Value": v})
	}
	return map[string]any{
		"ShippingProcessId": ping.SHPCreateReferral,
		"InteropID":         ping.DefaultInteropID,
		"APIVersion":        "V2",
		"Data":              []any{map[string]any{"ExternalId": caseID, "ExternalGUID": f["progres_externalguid"], "Fields": fl}},
	}
}

// sendAsync posts an SHP-2731 referral and returns its SPHTransactionId.
func (c *client) sendAsync(caseID string, f map[string]any) string {
	c.tb.Helper()
	st, resp := c.post(ingestPath(ping.DefaultPartnerID, "asyncdata"), asyncBody(caseID, f))
	if st != http.StatusOK {
		c.tb.Fatalf("asyncdata: status %d, %v", st, resp)
	}
	id, _ := resp["SPHTransactionId"].(string)
	if id == "" {
		c.tb.Fatalf("asyncdata: no SPHTransactionId in %v", resp)
	}
	return id
}

func (c *client) checkStatus(txID string) map[string]any {
	c.tb.Helper()
	st, resp := c.post(ping.CheckStatusPath, map[string]any{
		"ShippingProcessId": ping.SHPCreateReferral,
		"InteropID":         ping.DefaultInteropID,
		"PartnerId":         ping.DefaultPartnerID,
		"SPHTransactionId":  txID,
	})
	if st != http.StatusOK {
		c.tb.Fatalf("checkstatus: status %d, %v", st, resp)
	}
	return resp
}

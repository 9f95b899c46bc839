package his_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"casesync/internal/fakes/faults"
	"casesync/internal/fakes/his"
)

func login(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Post(base+"/Users/login", "application/json",
		strings.NewReader(`{"email":"`+his.DefaultEmail+`","password":"`+his.DefaultPassword+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil || resp.StatusCode != 200 {
		t.Fatalf("login: %d %v", resp.StatusCode, err)
	}
	return b["id"].(string)
}

func get(t *testing.T, u string, hdr map[string]string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var b map[string]any
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatalf("%s: not JSON: %s", u, raw)
	}
	return resp.StatusCode, b
}

const fullInclude = `,"include":[{"relation":"interventions","scope":{"order":"vstdate DESC","limit":50}},"riskmodel"]}`

func TestFindOne(t *testing.T) {
	srv := his.New(his.Options{People: 3, Seed: 1})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	tok := login(t, ts.URL)
	q := func(filter, token string) string {
		v := url.Values{"filter": {filter}}
		if token != "" {
			v.Set("access_token", token)
		}
		return ts.URL + "/people/findOne?" + v.Encode()
	}
	tests := []struct {
		name     string
		url      string
		hdr      map[string]string
		status   int
		code     string   // error.code
		visits   []string // vstdate of the interventions, in order
		risk     bool     // riskmodel present and not null
		noInclud bool     // interventions absent
	}{
		{"found, newest visit first", q(`{"where":{"cid":"`+his.CIDFound+`"}`+fullInclude, tok), nil, 200, "", []string{"2024-03-11", "2024-03-02"}, true, false},
		{"limit", q(`{"where":{"cid":"`+his.CIDFound+`"},"include":{"relation":"interventions","scope":{"order":"vstdate ASC","limit":1}}}`, tok), nil, 200, "", []string{"2024-03-02"}, false, false},
		{"token in the Authorization header", q(`{"where":{"cid":"`+his.CIDFound+`"}}`, ""), map[string]string{"Authorization": tok}, 200, "", nil, false, true},
		{"undated visits", q(`{"where":{"cid":"`+his.CIDNoDates+`"}`+fullInclude, tok), nil, 200, "", []string{"", ""}, false, false},
		{"not found", q(`{"where":{"cid":"`+his.NotFoundCID+`"}`+fullInclude, tok), nil, 404, "MODEL_NOT_FOUND", nil, false, true},
		{"no cid matches nothing", q(`{"where":{}}`, tok), nil, 404, "MODEL_NOT_FOUND", nil, false, true},
		{"bad token", q(`{"where":{"cid":"`+his.CIDFound+`"}}`, "nope"), nil, 401, "AUTHORIZATION_REQUIRED", nil, false, true},
		{"no token", q(`{"where":{"cid":"`+his.CIDFound+`"}}`, ""), nil, 401, "AUTHORIZATION_REQUIRED", nil, false, true},
		{"filter not JSON", q(`{where`, tok), nil, 400, "", nil, false, true},
		{"unknown relation", q(`{"where":{"cid":"`+his.CIDFound+`"},"include":"pets"}`, tok), nil, 400, "INVALID_INCLUSION_FILTER", nil, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, b := get(t, tc.url, tc.hdr)
			if st != tc.status {
				t.Fatalf("status %d, want %d: %v", st, tc.status, b)
			}
			if tc.code != "" {
				if got := b["error"].(map[string]any)["code"]; got != tc.code {
					t.Fatalf("error.code %v, want %s", got, tc.code)
				}
				return
			}
			if st != 200 {
				return
			}
			iv, has := b["interventions"]
			if tc.noInclud {
				if has {
					t.Fatalf("interventions present without include")
				}
				return
			}
			var dates []string
			for _, v := range iv.([]any) {
				d, _ := v.(map[string]any)["vstdate"].(string)
				dates = append(dates, d)
			}
			if strings.Join(dates, ",") != strings.Join(tc.visits, ",") {
				t.Fatalf("visits %v, want %v", dates, tc.visits)
			}
			if rm, _ := b["riskmodel"].(map[string]any); (rm != nil) != tc.risk {
				t.Fatalf("riskmodel %v, want present=%v", b["riskmodel"], tc.risk)
			}
		})
	}
	w := srv.Counters().Writes()
	if w["login"] != 1 || w["findOne found"] != 4 || w["findOne not_found"] != 2 {
		t.Fatalf("counters %v", w)
	}
}

func TestLoginRefused(t *testing.T) {
	ts := httptest.NewServer(his.New(his.Options{}))
	defer ts.Close()
	resp, err := http.Post(ts.URL+"/Users/login", "application/json", strings.NewReader(`{"email":"`+his.DefaultEmail+`","password":"wrong"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("status %d, want 401", resp.StatusCode)
	}
}

func TestFaults(t *testing.T) {
	srv := his.New(his.Options{Faults: faults.Config{Rate500: 1}})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	st, _ := get(t, ts.URL+"/people/findOne", nil)
	if st != 500 || srv.Counters().Injected500.Load() != 1 {
		t.Fatalf("status %d, injected %d", st, srv.Counters().Injected500.Load())
	}
}

func TestGeneratedPeopleHaveValidIDs(t *testing.T) {
	srv := his.New(his.Options{People: 50, Seed: 7})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	tok := login(t, ts.URL)
	for i := 0; i < 50; i += 7 {
		cid := his.WithCheckDigit(fmt.Sprintf("2%011d", i))
		st, b := get(t, ts.URL+"/people/findOne?"+url.Values{"access_token": {tok}, "filter": {`{"where":{"cid":"` + cid + `"}}`}}.Encode(), nil)
		if st != 200 || b["cid"] != cid {
			t.Fatalf("generated %s: %d %v", cid, st, b)
		}
	}
}

package rest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"casesync/connectors/rest"
	"casesync/engine"
)

// dataRecords selects .data, the way a spec's `records: ".data"` does.
func dataRecords(ctx context.Context, body any) ([]any, error) {
	v, err := jq(".data").One(ctx, body, nil)
	if err != nil {
		return nil, err
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("records: want an array, got %T", v)
	}
	return arr, nil
}

// dataFieldRecords reads Data, which may be an array, null or a "no data" string.
func dataFieldRecords(_ context.Context, body any) ([]any, error) {
	arr, _ := body.(map[string]any)["Data"].([]any)
	return arr, nil
}

func items(from, to int) []any {
	out := []any{}
	for i := from; i < to; i++ {
		out = append(out, map[string]any{"id": float64(i + 1)})
	}
	return out
}

func ids(recs []any) []int {
	var out []int
	for _, r := range recs {
		out = append(out, int(r.(map[string]any)["id"].(float64)))
	}
	return out
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

// pageServer serves n records by page/per (1-based) with metadata.total;
// total overrides the announced total, cap the page size it honours.
func pageServer(n, total, cap int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		per, _ := strconv.Atoi(r.URL.Query().Get("per"))
		if cap > 0 && per > cap {
			per = cap
		}
		from := min((page-1)*per, n)
		to := min(from+per, n)
		writeJSON(w, 200, map[string]any{"data": items(from, to), "metadata": map[string]any{"total": total, "per": per, "page": page}})
	}
}

func offsetServer(n int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		off, _ := strconv.Atoi(r.URL.Query().Get("offset"))
		lim, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		from := min(off, n)
		writeJSON(w, 200, map[string]any{"data": items(from, min(from+lim, n)), "count": n})
	}
}

// nextLinkServer gives a relative next link in the body and in a Link header.
func nextLinkServer(n, per int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		from, _ := strconv.Atoi(r.URL.Query().Get("after"))
		to := min(from+per, n)
		body := map[string]any{"data": items(from, to), "next": nil}
		if to < n {
			next := fmt.Sprintf("/items?after=%d", to)
			body["next"] = next
			w.Header().Set("Link", fmt.Sprintf(`<%s>; rel="next", </items?after=0>; rel="first"`, next))
		}
		writeJSON(w, 200, body)
	}
}

// cursorServer pages a POSTed query with a paging cookie carried in the
// next body, checking that the original body travels with it.
func cursorServer(t *testing.T, n, per int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		if body["ShippingProcessId"] != "SHP-1" {
			writeJSON(w, 400, map[string]any{"ErrorMessage": "unknown shipping process"})
			return
		}
		page := 1
		if c, ok := body["PagingCookie"].(string); ok {
			page, _ = strconv.Atoi(c[len("cookie-"):])
			if int(body["PageNumber"].(float64)) != page {
				t.Errorf("PageNumber %v does not match cookie %s", body["PageNumber"], c)
			}
		}
		from := min((page-1)*per, n)
		to := min(from+per, n)
		summary := map[string]any{"PagingCookie": nil, "PageNumber": 0, "IsMoreRecordsAvailable": false}
		if to < n {
			summary = map[string]any{"PagingCookie": fmt.Sprintf("cookie-%d", page+1), "PageNumber": page, "IsMoreRecordsAvailable": true}
		}
		writeJSON(w, 200, map[string]any{"Data": items(from, to), "ErrorMessage": nil, "RecordCount": to - from, "PagingSummary": summary})
	}
}

func pageSpec(per, maxPages int, total string) *engine.Pagination {
	return &engine.Pagination{Kind: "page", Spec: engine.PaginationSpec{Page: &engine.PagePagination{
		PageParam: "page", PerParam: "per", Per: per, Start: 1, Total: total, MaxPages: maxPages}}}
}

const cursorNext = `if .PagingSummary.IsMoreRecordsAvailable then {PagingCookie: .PagingSummary.PagingCookie, PageNumber: (.PagingSummary.PageNumber + 1)} else null end`

func TestList_Paginators(t *testing.T) {
	tests := []struct {
		name     string
		handler  func(t *testing.T) http.HandlerFunc
		call     rest.Call
		wantIDs  []int
		wantReqs int32
		wantPage []int // records per page
		wantErr  string
	}{
		{
			name:    "page with total",
			handler: func(*testing.T) http.HandlerFunc { return pageServer(25, 25, 0) },
			call:    rest.Call{Path: "/cases", Pagination: pageSpec(10, 0, ".metadata.total"), Records: dataRecords},
			wantIDs: seq(25), wantReqs: 3, wantPage: []int{10, 10, 5},
		},
		{
			name:    "page with total, exact multiple: no empty page asked",
			handler: func(*testing.T) http.HandlerFunc { return pageServer(20, 20, 0) },
			call:    rest.Call{Path: "/cases", Pagination: pageSpec(10, 0, ".metadata.total"), Records: dataRecords},
			wantIDs: seq(20), wantReqs: 2, wantPage: []int{10, 10},
		},
		{
			name:    "page without total stops on the empty page",
			handler: func(*testing.T) http.HandlerFunc { return pageServer(20, 20, 0) },
			call:    rest.Call{Path: "/cases", Pagination: pageSpec(10, 0, ""), Records: dataRecords},
			wantIDs: seq(20), wantReqs: 3, wantPage: []int{10, 10, 0},
		},
		{
			name:     "empty listing",
			handler:  func(*testing.T) http.HandlerFunc { return pageServer(0, 0, 0) },
			call:     rest.Call{Path: "/cases", Pagination: pageSpec(10, 0, ".metadata.total"), Records: dataRecords},
			wantReqs: 1, wantPage: []int{0},
		},
		{
			name:    "server total larger than the records it has",
			handler: func(*testing.T) http.HandlerFunc { return pageServer(25, 30, 0) },
			call:    rest.Call{Path: "/cases", Pagination: pageSpec(10, 0, ".metadata.total"), Records: dataRecords},
			wantErr: "pages ran out after 25 records of an announced 30",
		},
		{
			name:    "server total smaller than the records it sends",
			handler: func(*testing.T) http.HandlerFunc { return pageServer(25, 15, 0) },
			call:    rest.Call{Path: "/cases", Pagination: pageSpec(10, 0, ".metadata.total"), Records: dataRecords},
			wantErr: "received 20 records, more than the announced total 15",
		},
		{
			name:    "server caps per below what we asked",
			handler: func(*testing.T) http.HandlerFunc { return pageServer(25, 25, 5) },
			call:    rest.Call{Path: "/cases", Pagination: pageSpec(10, 0, ".metadata.total"), Records: dataRecords},
			wantErr: "pages ran out after 5 records of an announced 25",
		},
		{
			name:    "max_pages reached with pages left",
			handler: func(*testing.T) http.HandlerFunc { return pageServer(25, 25, 0) },
			call:    rest.Call{Path: "/cases", Pagination: pageSpec(10, 2, ".metadata.total"), Records: dataRecords},
			wantErr: "more pages after max_pages 2",
		},
		{
			name:    "offset",
			handler: func(*testing.T) http.HandlerFunc { return offsetServer(25) },
			call: rest.Call{Path: "/items", Records: dataRecords, Pagination: &engine.Pagination{Kind: "offset",
				Spec: engine.PaginationSpec{Offset: &engine.OffsetPagination{OffsetParam: "offset", LimitParam: "limit", Limit: 10, Total: ".count"}}}},
			wantIDs: seq(25), wantReqs: 3, wantPage: []int{10, 10, 5},
		},
		{
			name:    "next_link from the body",
			handler: func(*testing.T) http.HandlerFunc { return nextLinkServer(25, 10) },
			call: rest.Call{Path: "/items", Records: dataRecords, Pagination: &engine.Pagination{Kind: "next_link",
				Spec: engine.PaginationSpec{NextLink: &engine.NextLinkPagination{JQ: ".next"}}, Next: jq(".next")}},
			wantIDs: seq(25), wantReqs: 3, wantPage: []int{10, 10, 5},
		},
		{
			name:    "next_link from the Link header",
			handler: func(*testing.T) http.HandlerFunc { return nextLinkServer(25, 10) },
			call: rest.Call{Path: "/items", Records: dataRecords, Pagination: &engine.Pagination{Kind: "next_link",
				Spec: engine.PaginationSpec{NextLink: &engine.NextLinkPagination{LinkHeader: true}}}},
			wantIDs: seq(25), wantReqs: 3, wantPage: []int{10, 10, 5},
		},
		{
			name: "next_link to another host is refused",
			handler: func(*testing.T) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					writeJSON(w, 200, map[string]any{"data": items(0, 1), "next": "https://elsewhere.example/items?after=1"})
				}
			},
			call: rest.Call{Path: "/items", Records: dataRecords, Pagination: &engine.Pagination{Kind: "next_link",
				Spec: engine.PaginationSpec{NextLink: &engine.NextLinkPagination{JQ: ".next"}}}},
			wantErr: "next link leaves",
		},
		{
			name:    "body_cursor merges the continuation into the next body",
			handler: func(t *testing.T) http.HandlerFunc { return cursorServer(t, 25, 10) },
			call: rest.Call{Method: "POST", Path: "/retrieve", Body: map[string]any{"ShippingProcessId": "SHP-1", "PartnerId": "P-1"},
				Records:    dataFieldRecords,
				Pagination: &engine.Pagination{Kind: "body_cursor", Spec: engine.PaginationSpec{BodyCursor: &engine.BodyCursorPagination{Next: cursorNext}}}},
			wantIDs: seq(25), wantReqs: 3, wantPage: []int{10, 10, 5},
		},
		{
			name: "body_cursor that does not advance",
			handler: func(*testing.T) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					writeJSON(w, 200, map[string]any{"Data": items(0, 2), "PagingSummary": map[string]any{"PagingCookie": "same", "PageNumber": 1, "IsMoreRecordsAvailable": true}})
				}
			},
			call: rest.Call{Method: "POST", Path: "/retrieve", Body: map[string]any{"q": 1}, Records: dataFieldRecords,
				Pagination: &engine.Pagination{Kind: "body_cursor", Spec: engine.PaginationSpec{BodyCursor: &engine.BodyCursorPagination{Next: cursorNext}}}},
			wantErr: "the cursor did not advance",
		},
		{
			name: "none: an array body is the records",
			handler: func(*testing.T) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, items(0, 3)) }
			},
			call:    rest.Call{Path: "/all", Pagination: &engine.Pagination{Kind: "none", Spec: engine.PaginationSpec{None: &struct{}{}}}},
			wantIDs: seq(3), wantReqs: 1, wantPage: []int{3},
		},
		{
			name: "no pagination: an object body is one record",
			handler: func(*testing.T) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]any{"id": 1}) }
			},
			call:    rest.Call{Path: "/one"},
			wantIDs: seq(1), wantReqs: 1, wantPage: []int{1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var reqs atomic.Int32
			h := tc.handler(t)
			srv := serve(t, func(w http.ResponseWriter, r *http.Request) { reqs.Add(1); h(w, r) })
			c, _ := newClient(t, connector(srv.URL), nil)
			var got []int
			var sizes []int
			call := tc.call
			err := c.List(t.Context(), &call, func(p *engine.Page) error {
				if p.Number != len(sizes)+1 {
					t.Errorf("page number %d, want %d", p.Number, len(sizes)+1)
				}
				sizes = append(sizes, len(p.Records))
				got = append(got, ids(p.Records)...)
				return nil
			})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			if diff := cmp.Diff(tc.wantIDs, got); diff != "" {
				t.Errorf("record ids (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantPage, sizes); diff != "" {
				t.Errorf("page sizes (-want +got):\n%s", diff)
			}
			if reqs.Load() != tc.wantReqs {
				t.Errorf("requests = %d, want %d", reqs.Load(), tc.wantReqs)
			}
		})
	}
}

func TestList_ErrorsAreTyped(t *testing.T) {
	srv := serve(t, pageServer(25, 30, 0))
	c, _ := newClient(t, connector(srv.URL), nil)
	err := c.List(t.Context(), &rest.Call{Path: "/x", Pagination: pageSpec(10, 0, ".metadata.total"), Records: dataRecords},
		func(*engine.Page) error { return nil })
	var le *rest.ListingError
	if !errors.As(err, &le) || classOf(err) != engine.ClassRetryable {
		t.Errorf("lying total: err = %T %v, class %s; want *rest.ListingError, retryable", err, err, classOf(err))
	}
	err = c.List(t.Context(), &rest.Call{Path: "/x", Pagination: pageSpec(10, 1, ""), Records: dataRecords},
		func(*engine.Page) error { return nil })
	var me *rest.MaxPagesError
	if !errors.As(err, &me) || classOf(err) != engine.ClassConfig {
		t.Errorf("max pages: err = %T %v, class %s; want *rest.MaxPagesError, config", err, err, classOf(err))
	}
	stop := errors.New("stop")
	if err := c.List(t.Context(), &rest.Call{Path: "/x", Pagination: pageSpec(10, 0, ""), Records: dataRecords},
		func(*engine.Page) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("callback error: got %v, want it returned as is", err)
	}
}

func TestList_ConnectorDefaultPagination(t *testing.T) {
	srv := serve(t, pageServer(15, 15, 0))
	c, _ := newClient(t, connector(srv.URL, func(c *engine.Connector) { c.Pagination = pageSpec(10, 0, ".metadata.total") }), nil)
	n := 0
	if err := c.List(t.Context(), &rest.Call{Path: "/x", Records: dataRecords}, func(p *engine.Page) error {
		n += len(p.Records)
		if p.Total != 15 {
			t.Errorf("Total = %d, want 15", p.Total)
		}
		return nil
	}); err != nil || n != 15 {
		t.Fatalf("List: %d records, err %v; want 15, nil", n, err)
	}
}

func TestLinkNext(t *testing.T) {
	tests := []struct{ name, header, want string }{
		{"github style", `<https://h/x?page=2>; rel="next", <https://h/x?page=9>; rel="last"`, "https://h/x?page=2"},
		{"next not first", `<https://h/x?page=1>; rel="prev", <https://h/x?page=3>; rel="next"`, "https://h/x?page=3"},
		{"several rels", `</x?a=1,2>; rel="next last"`, "/x?a=1,2"},
		{"no next", `<https://h/x?page=1>; rel="prev"`, ""},
		{"garbage", `nonsense`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := rest.LinkNext(http.Header{"Link": {tc.header}}); got != tc.want {
				t.Errorf("LinkNext = %q, want %q", got, tc.want)
			}
		})
	}
}

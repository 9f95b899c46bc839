// Package mapping compiles the jq and expr programs of a spec once and runs
// them many times. It owns the variables and helper functions a spec can use
// ($vars, $cursor, $now, lookup/1, rlookup/1, …), the lookup tables, and the
// {jq} string templates used in request paths and queries.
//
// It knows nothing of CUE, HTTP or SQL: positions are offsets inside one
// program's text, which the spec loader turns into file:line:col.
package mapping

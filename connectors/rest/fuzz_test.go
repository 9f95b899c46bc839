package rest_test

import (
	"net/http"
	"testing"
	"unicode/utf8"

	"casesync/connectors/rest"
)

// Link headers and error bodies come from servers: parsing them must never
// panic, and a message stays within its bound.
func FuzzLinkNext(f *testing.F) {
	for _, s := range []string{`<https://h/x?page=2>; rel="next"`, `</x?a=1,2>; rel="next last", <y>; rel=prev`, `<`, `;;,,"`, `<a>;rel=next`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rest.LinkNext(http.Header{"Link": {s}})
	})
}

func FuzzServerMessage(f *testing.F) {
	for _, s := range []string{
		`{"errors":[{"message":"Invalid Record JSON","detail":["/age"]}]}`,
		`{"message":{"gender":["can't be blank"]},"errors":{"a":"b"}}`,
		`{"ErrorMessage":"x"}`, `"s"`, `[1,{"message":2}]`, `<html>`, "text\nmore",
	} {
		f.Add(422, s)
	}
	f.Fuzz(func(t *testing.T, status int, body string) {
		msg := rest.ServerMessage(status, "", []byte(body))
		if n := utf8.RuneCountInString(msg); n > 301 {
			t.Errorf("message of %d characters", n)
		}
	})
}

package rest

import (
	"maps"
	"net/http"
	"slices"
)

// Internals the external tests check.

func AuthKindNames() []string { return slices.Sorted(maps.Keys(authKinds)) }

func PaginatorNames() []string { return slices.Sorted(maps.Keys(paginators)) }

func ServerMessage(status int, ctype string, raw []byte) string {
	return serverMessage(status, ctype, raw)
}

func LinkNext(h http.Header) string { return linkNext(h) }

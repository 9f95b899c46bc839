package main

import (
	"fmt"
	"strings"
	"unicode"
)

// printable neutralises what a terminal would act on in text that came
// from outside (record keys, remote messages, cursors): control characters
// (escape sequences that clear the screen or retitle the window, carriage
// returns that overwrite a line, newlines that forge table rows) and the
// bidirectional overrides that reorder what is shown. Each is written as a
// visible \xNN or \uNNNN; everything else passes unchanged.
func printable(s string) string {
	if strings.IndexFunc(s, unsafeRune) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case !unsafeRune(r):
			b.WriteRune(r)
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200e || r == 0x200f || r == 0x061c
}

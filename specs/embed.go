// Package specs carries the shipped deployments inside the engine binary,
// so `engine demo` runs from any folder, not only from a checkout.
package specs

import "embed"

// FS holds the CUE module (cue.mod), the shared lib and each deployment's
// spec, lookup and schema (.sql) files, at the same paths as in this folder. Only those
// kinds of file: a state file someone left in a deployment folder must not
// ship in the binary.
//
//go:embed cue.mod lib */*.cue */*.csv */*.json */*.sql
var FS embed.FS

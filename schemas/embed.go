// Package schemas holds the casesync spec language: the CUE schema every
// spec file is unified with. It is the only definition of the language; Go
// code decodes what it accepts, and tests keep the two in step.
//
// The schema lives in the specs' CUE module (specs/lib/schema), so plain
// CUE tooling (cue vet, editors) can import it as
// "casesync.example/lib/schema"; the engine always uses the copy built
// into the binary, so a deployment folder with an older copy is still
// checked against the language this engine speaks.
package schemas

import (
	"io/fs"

	"casesync/specs"
)

// Path is where the schema sits in the specs module (and in specs.FS).
const Path = "lib/schema/pipeline.cue"

// Filename is the name positions in the schema are reported under.
const Filename = "specs/" + Path

// Pipeline is the text of specs/lib/schema/pipeline.cue.
var Pipeline = func() []byte {
	b, err := fs.ReadFile(specs.FS, Path)
	if err != nil {
		panic("schemas: the schema is not embedded: " + err.Error())
	}
	return b
}()

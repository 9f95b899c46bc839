// Package schemas holds the casesync spec language: the CUE schema every
// spec file is unified with. It is the only definition of the language; Go
// code decodes what it accepts, and tests keep the two in step.
package schemas

import _ "embed"

// Pipeline is the text of schemas/pipeline.cue.
//
//go:embed pipeline.cue
var Pipeline []byte

// Filename is the name positions in the schema are reported under.
const Filename = "schemas/pipeline.cue"

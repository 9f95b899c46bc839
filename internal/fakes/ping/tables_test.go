package ping

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// readColumn returns column col of a value-map CSV (header dropped),
// distinct values in first-seen order.
func readColumn(t *testing.T, name string, col int) []string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var out []string
	for _, r := range recs[1:] {
		if !slices.Contains(out, r[col]) {
			out = append(out, r[col])
		}
	}
	return out
}

func TestServer_TablesMatchValueMaps(t *testing.T) {
	var types []string
	for _, it := range allowListedTypes {
		types = append(types, it.Description)
	}
	var sexes []string
	for _, c := range sexCodes {
		sexes = append(sexes, strconv.Itoa(c))
	}
	tests := []struct {
		name string
		file string
		col  int
		got  []string
	}{
		{"allow-listed intervention types", "progres_to_primero_service_type.csv", 0, types},
		{"sex codes", "progres_sex_code_to_primero_sex.csv", 0, sexes},
		{"inbound language names", "progres_language_name_to_primero_language.csv", 0, knownLanguages},
		{"requested service GUIDs", "primero_service_type_to_progres_requested_service_guid.csv", 1, requestedServices},
		{"specific-need category GUIDs", "primero_protection_concern_to_progres_spneed_category_guid.csv", 1, spneedCategories},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := readColumn(t, tc.file, tc.col)
			if diff := cmp.Diff(want, tc.got); diff != "" {
				t.Errorf("%s drifted from %s (-csv +fake):\n%s", tc.name, tc.file, diff)
			}
		})
	}
	t.Run("the off-list values really are off the lists", func(t *testing.T) {
		if slices.Contains(readColumn(t, "progres_to_primero_service_type.csv", 0), offListType.Description) {
			t.Errorf("%q is allow-listed", offListType.Description)
		}
		if slices.Contains(readColumn(t, "progres_language_name_to_primero_language.csv", 0), unknownLanguage) {
			t.Errorf("%q is in the language table", unknownLanguage)
		}
	})
	t.Run("seeded need categories are the table's", func(t *testing.T) {
		for _, n := range specificNeeds {
			if !slices.Contains(spneedCategories, n.CategoryID) {
				t.Errorf("need %q has category %s outside the table", n.Subcategory, n.CategoryID)
			}
		}
	})
}

package streamspec_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/keyledger/keyledger/streamspec"
)

var update = flag.Bool("update", false, "rewrite the committed schemas from the Go types")

// The committed schemas are what the Go types generate: a change of a payload type
// that is not committed (and so not reviewed as a change of the contract) fails here.
func TestCommittedSchemasMatchTheGoTypes(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range streamspec.Catalog {
		if seen[e.Type] {
			t.Errorf("%s listed twice", e.Type)
		}
		seen[e.Type] = true
		want, err := streamspec.Generate(e)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(streamspec.SchemaDir, streamspec.SchemaFile(e.Type))
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run: go test ./streamspec -run TestCommittedSchemas -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what %T generates (run: go test ./streamspec -run TestCommittedSchemas -update)\n%s", path, e.Payload, want)
		}
	}
	files, _ := filepath.Glob(filepath.Join(streamspec.SchemaDir, "*.json"))
	if len(files) != len(streamspec.Catalog) {
		t.Errorf("%d schema files for %d event types", len(files), len(streamspec.Catalog))
	}
}

// docs/events.md names every event type and links its committed schema.
func TestEventsDocumentListsEveryType(t *testing.T) {
	doc, err := os.ReadFile("../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range streamspec.Catalog {
		link := "(../streamspec/schemas/" + streamspec.SchemaFile(e.Type) + ")"
		if !bytes.Contains(doc, []byte("`"+e.Type+"`")) || !bytes.Contains(doc, []byte(link)) {
			t.Errorf("docs/events.md does not document %s with its schema %s", e.Type, link)
		}
	}
	for _, h := range streamspec.Headers {
		if !bytes.Contains(doc, []byte("`"+h.Name+"`")) {
			t.Errorf("docs/events.md does not document the header %s", h.Name)
		}
	}
}

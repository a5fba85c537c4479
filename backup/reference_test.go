package backup

import (
	"reflect"
	"strings"
	"testing"
)

// Every key the config decodes is in the reference, with its table.
func TestConfigReferenceComplete(t *testing.T) {
	var walk func(table string, typ reflect.Type)
	walk = func(table string, typ reflect.Type) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			key := strings.Split(f.Tag.Get("toml"), ",")[0]
			if key == "" || key == "-" {
				continue
			}
			if f.Type.Kind() == reflect.Map {
				if !strings.Contains(ConfigReference, "\n["+key+"]") {
					t.Errorf("table [%s] is not in the reference", key)
				}
				continue
			}
			if f.Type.Kind() == reflect.Struct {
				if !strings.Contains(ConfigReference, "\n["+key+"]") {
					t.Errorf("table [%s] is not in the reference", key)
				}
				walk(key, f.Type)
				continue
			}
			// The key starts a line, below its table's header.
			sect := ConfigReference
			if table != "" {
				sect = sect[strings.Index(sect, "\n["+table+"]"):]
				if j := strings.Index(sect[1:], "\n["); j >= 0 {
					sect = sect[:j+1]
				}
			}
			if !strings.Contains(sect, "\n"+key+" ") {
				t.Errorf("key %q (table %q) is not in the reference", key, table)
			}
		}
	}
	walk("", reflect.TypeOf(Config{}))
	// Defaults quoted in the reference are the code's.
	for _, d := range []string{DefaultSnapCreate, DefaultSnapRemove, DefaultSnapDevice, DefaultSnapCOW, `"` + DefaultSnapSize + `"`} {
		if !strings.Contains(ConfigReference, d) {
			t.Errorf("default %q is not in the reference", d)
		}
	}
}

package backup

// ConfigError is a config file that cannot be used as written: its TOML
// does not parse or has a value of the wrong type, it has a key Config
// does not know, a value is out of range or not one of the choices
// (compress = "lz4", schedule.sequence = [12]), or two files name the same
// guest. Reading the file (a missing directory, a permission) is not one.
//
// It is the same mistake as an invalid flag value, so the CLI exits 2
// (usage) for it, as for `--compress lz4`, and before any work is done.
type ConfigError struct {
	Path string // the config file
	Err  error
}

func (e *ConfigError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

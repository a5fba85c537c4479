package main

import (
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/imgtool/imgtool/backup"
	"github.com/spf13/cobra"
)

func newRestoreCmd(g *globalFlags) *cobra.Command {
	var from, volume, date string
	var s3c backup.S3Config
	cmd := &cobra.Command{
		Use:   "restore DEST --from DIR --volume VOL [--date D]",
		Short: "Restore a volume from imgtool backups: level 0 plus incrementals, as restore -r does",
		Long: `imgtool restore rebuilds a filesystem tree in DEST (empty or new) from the
backups of one volume in DIR (a guest's backup directory, DEST/NAME of the
config): the newest backup at or before --date, and the chain it depends on,
level 0 first. Deletions and renames are applied as restore -r applies them.

The files are ordinary dump(8) streams; the stock route works too:
  mkdir /mnt/new && cd /mnt/new
  zstd -dc root_p1.20260101-020000.L0.dump.zst | restore -rf -
  zstd -dc root_p1.20260103-020000.L2.dump.zst | restore -rf -

--from may be a bucket: s3://BUCKET/PREFIX/GUEST (the dest of the guest's
config plus its name). Credentials come from the environment and the
shared AWS config, as for backup run; --s3-endpoint and --s3-path-style
reach self-hosted servers. The objects are streamed, never spooled.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if from == "" || !cmd.Flags().Changed("volume") {
				return usageErrorf("--from and --volume are required")
			}
			var at time.Time
			if date != "" {
				var err error
				if at, err = time.ParseInLocation("2006-01-02", date, time.Local); err == nil {
					at = at.Add(24*time.Hour - time.Second)
				} else if at, err = time.Parse(time.RFC3339, date); err != nil {
					return usageErrorf("--date %q: want YYYY-MM-DD or RFC 3339", date)
				}
			}
			var chain []*backup.Manifest
			var warns []string
			var err error
			if backup.IsS3(from) {
				dest, guest := path.Split(strings.TrimSuffix(from, "/"))
				if guest == "" || dest == "s3://" {
					return usageErrorf("--from %q: want s3://BUCKET/PREFIX/GUEST", from)
				}
				st, oerr := backup.OpenStore(cmd.Context(), strings.TrimSuffix(dest, "/"), guest, s3c)
				if oerr != nil {
					return oerr
				}
				chain, warns, err = backup.RestoreFrom(cmd.Context(), args[0], st, volume, at)
			} else {
				chain, warns, err = backup.Restore(args[0], from, volume, at)
			}
			for _, w := range warns {
				fmt.Fprintf(cmd.ErrOrStderr(), "imgtool: warning: %s\n", w)
			}
			if err != nil {
				return err
			}
			if g.verbose {
				for _, m := range chain {
					fmt.Fprintf(cmd.OutOrStdout(), "applied %s (level %d)\n", m.File, m.Level)
				}
			}
			if len(warns) > 0 {
				return &codeError{exitPartial, fmt.Errorf("%d warnings", len(warns))}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the guest's backup directory, or s3://BUCKET/PREFIX/GUEST")
	cmd.Flags().StringVar(&s3c.Endpoint, "s3-endpoint", "", "S3 server URL (default AWS, or $AWS_ENDPOINT_URL)")
	cmd.Flags().BoolVar(&s3c.PathStyle, "s3-path-style", false, "address the bucket as ENDPOINT/BUCKET (most self-hosted servers)")
	cmd.Flags().StringVar(&s3c.Region, "s3-region", "", "S3 region (default $AWS_REGION, else us-east-1)")
	cmd.Flags().StringVar(&volume, "volume", "", "volume address (p1, VolGroup00/LogVol00; \"\" for a disk that is one filesystem) or SOURCE#VOLUME")
	cmd.Flags().StringVar(&date, "date", "", "restore the state of this day (YYYY-MM-DD) or time (RFC 3339); default the newest")
	return cmd
}

package backup

// ConfigReference is `imgtool backup config`: every key of a guest's TOML
// file with its default. TestConfigReferenceComplete checks that every
// key Config decodes is listed here.
const ConfigReference = `imgtool backup: one TOML file per guest in the config directory
(/etc/imgtool/backup.d/NAME.conf or .toml). Every key, with its default:

name             = (required)  guest name: letters, digits, _ . + -; names the
                               backup directory DEST/NAME (or s3 prefix)
sources          = (required)  every disk of the guest: LV paths (/dev/VG/LV,
                               /dev/mapper/VG-LV) or image files
dest             = (required)  a directory, or "s3://BUCKET/PREFIX"
hosts            = []          more copies, each checked by sha256: a directory,
                               "[user@]host:/dir" (rsync over ssh), or s3://...
compress         = "zstd"      zstd, xz or none
spool            = "auto"      auto (xz spools the raw dump so the snapshot is
                               released before compressing), always, never
pause            = ""          command run before snapshotting, e.g.
                               "virsh suspend {name}" or "xl pause {name}"
resume           = ""          e.g. "virsh resume {name}" or "xl unpause {name}"
snapshot_size    = "1G"        {size} of the snapshot (lvcreate --size)
guest_definition = ""          libvirt XML or Xen cfg: a disk it lists that
                               sources do not fails the run (exit 4)
skip             = []          volumes deliberately NOT backed up, by address
                               ("p3", "vg0/scratch") or "SOURCE#ADDRESS"; any
                               other volume holding data that cannot be dumped
                               fails the run (exit 6)

[key_files]                    LUKS: the key file (cryptsetup --key-file content)
                               that opens the encrypted volumes of a source;
                               without one they are NOT backed up (exit 6)
"/dev/vg0/web1-data" = "/etc/imgtool/keys/web1-data.key"

[luks_headers]                 LUKS with a detached header (cryptsetup luksFormat
                               --header): "[VOLUME=]FILE" per source, as imgtool
                               --luks-header: FILE is the header, VOLUME (p1,
                               VG/LV; none: the whole source) its encrypted data
"/dev/vg0/web1-data" = "p1=/etc/imgtool/keys/web1-data.hdr"

[retention]
keep_days        = 0           keep every backup younger than this (0: no limit
                               by age)
keep_full        = 0           and the newest N level-0 chains; with both 0
                               nothing is deleted. A base a kept backup needs
                               is always kept.

[schedule]
full_day         = 1           day of the month of the level 0 (1-28)
sequence         = [3, 2, 5, 4, 7, 6, 9, 8, 9]   levels of the other days

[snapshot]
mode             = "auto"      auto: snapshot LVs, read image files as they are
                               (the guest stays paused meanwhile); always; never
create           = "lvcreate --snapshot --size {size} --name {snap} {source}"
remove           = "lvremove --force {vg}/{snap}"
device           = "/dev/{vg}/{snap}"
cow              = "/dev/mapper/{vgdm}-{snapdm}-cow"   checked for overflow

[s3]                           for s3:// dest or hosts; credentials come from
                               AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE,
                               ~/.aws/credentials and ~/.aws/config, web
                               identity or the instance role
endpoint         = ""          server URL; default AWS or $AWS_ENDPOINT_URL
path_style       = false       ENDPOINT/BUCKET/KEY (most self-hosted servers)
region           = ""          default $AWS_REGION or the profile's, else us-east-1
profile          = ""          shared-config profile; default $AWS_PROFILE
part_size        = "8M"        multipart part size (5M-1G); two parts in memory

Placeholders in commands (values are shell-quoted): {name} {source} {vg}
{lv} {snap} (LV-imgtool-snap) {vgdm} {snapdm} (device-mapper escaped: '-'
doubled) {size}. Commands run with /bin/sh -c.
`

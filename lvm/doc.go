// Package lvm reads LVM2 straight from physical volumes: no lvm2 library,
// no device-mapper, no root. It finds PV labels, reads metadata areas,
// assembles volume groups across any number of PVs (whole images,
// partitions, or LVs of another VG), exposes logical volumes as
// io.ReaderAt, and can rename a VG on disk with an undo record.
//
// # Reading
//
// ReadPV reads a PV's label, header, metadata areas and metadata copies;
// Assemble groups PVs into VGs; LV.Open reads an LV (ExampleAssemble shows
// the first two on the embedded demo).
//
// ReadPV returns an error wrapping ErrNoLabel when the first four sectors
// hold no LVM2 label. Damaged metadata areas are not fatal: they show up in
// PV.Notes and MDA.Err, and when the newest copy in a ring is damaged
// (checksum or syntax) older copies are recovered by scanning the ring.
//
// Assemble groups PVs by VG UUID, not name, so a dom0 VolGroup00 and a
// guest VolGroup00 found inside one of its LVs are two VGs. For each VG the
// readable copy with the highest seqno across all PVs wins; copies that
// disagree, damaged newest copies and fallbacks are reported in VG.Notes
// and set VG.Inconsistent. PVs named by the metadata but not found are
// listed in VG.Missing; LVs stay readable where their extents exist and a
// read touching a missing PV fails with *MissingPVError (VG, LV, PV UUID,
// LV offset). AssembleOptions.Metadata supplies metadata from elsewhere
// (an /etc/lvm/backup file parsed with ParseMetadata) for VGs whose
// on-disk copies are all gone.
//
// # Segment types
//
// LV.Open reads "striped" (linear is one stripe; any number of segments),
// "raid0", "raid1" and "mirror" (first leg whose PVs are present; LV.Check
// compares legs), snapshots (the visible snapshot LV reads the
// point-in-time view: COW chunk where dm-snapshot's persistent exception
// store has an exception, else the origin; LV.Snapshot reports the COW
// header's valid flag), and "thin" (through the pool's dm-thin metadata;
// unmapped blocks read as zeros). raid4, raid5_{ls,rs,la,ra,n},
// raid6_{zr,nr,nc,n_6,ls_6,rs_6,la_6,ra_6,0_6} and raid10 (near, 2 copies)
// read through package raid: data chunks straight from their rimage
// sub-LVs, and chunks of members that sit on a missing PV, are marked
// failed in the freshest rmeta dm-raid superblock, or lie above a rebuild's
// recovery offset, rebuilt from P (and Q) or the other copy. LV.RaidStatus
// reports that state and LV.CheckParity recomputes every stripe's parity,
// naming bad stripes with PV and image offsets. A reshape in progress is
// refused. "zero" reads zeros. Everything else (raid0_meta with reshape,
// cache, writecache, vdo, integrity, a thin-pool itself) fails with an
// error wrapping ErrNotReadable, never a silent misread. Readers of linear, striped and
// raid0 LVs implement image.Mapper so image.Resolve can turn an LV offset
// into an offset in the outermost image file.
//
// # Reports
//
// VG.Report, VG.PVReports, VG.LVReports and VG.SegReports return rows with
// the field names of `pvs/vgs/lvs --reportformat json` (numbers in bytes),
// and VG.Text / VG.BackupText the chosen metadata text (like vgcfgbackup).
//
// # Rename with undo
//
//	plan, err := lvm.PlanRename(vg, "guest00", &lvm.RenameOptions{NewUUIDs: true})
//	fmt.Print(plan)                          // dry run
//	undo, _ := plan.Undo().Marshal()         // save (and fsync) before writing
//	err = lvm.Apply(plan, map[string]lvm.WriteTarget{path: writableImage})
//	...
//	u, _ := lvm.ReadUndo(undo)
//	err = lvm.Undo(u, targets, false)        // restores byte for byte
//
// PlanRename writes the metadata with the new name and seqno+1 into every
// metadata area of every PV of the VG, after the current copy in the ring,
// as lvm2's _vg_write_raw would (512-byte aligned, wrapping past the end
// of the area to just after its header), points raw_locn slot 0 at it and
// recomputes the mda header checksum. NewUUIDs follows vgimportclone: a new
// VG UUID and new PV UUIDs, in the metadata and in each PV label (label
// CRC updated). Every write is an absolute offset in an outermost image
// file found through image.Resolve, with old and new bytes. It refuses
// VGs whose copies disagree, that have missing PVs or whose metadata did
// not come from disk, unless Force. Apply checks that every range still
// holds the old bytes before writing anything, writes text, labels, then
// headers, and syncs. The undo file (JSON) keeps the old bytes and the
// sha256 of what was written, and Undo refuses to restore over bytes that
// have changed since (unless forced).
//
// # Format references
//
// lib/format_text/layout.h and lib/label/label.c of LVM2 (label, PV
// header, mda header, raw_locn, CRC with seed 0xf597a6cf and no final
// xor), lib/format_text/format-text.c (ring placement), dm-snap-persistent.c
// (COW store), dm-thin-metadata.c and persistent-data/ (thin btrees). The
// fixtures in fixtures/scripts/lvm-*.sh build every case with real lvm2,
// thin_restore and hand-written metadata installed by vgcfgrestore.
package lvm

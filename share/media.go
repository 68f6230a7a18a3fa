package share

import (
	"strings"

	"gnutella/protocol"
)

// Media-type bits of a Query's GGEP "M" extension (docs/protocol.md §1.8), as LimeWire
// and gtk-gnutella define them.
const (
	MediaAudio     = 0x04
	MediaVideo     = 0x08
	MediaDocument  = 0x10
	MediaImage     = 0x20
	MediaWindows   = 0x40
	MediaUnixMacOS = 0x80

	mediaKnown = MediaAudio | MediaVideo | MediaDocument | MediaImage | MediaWindows | MediaUnixMacOS
)

// mediaByExt maps a lower-case extension to its media bits. Archives and
// disc images count as programs for both systems, as in LimeWire's
// MediaType tables.
var mediaByExt = func() map[string]uint8 {
	m := map[string]uint8{}
	add := func(bits uint8, exts string) {
		for _, e := range strings.Fields(exts) {
			m[e] |= bits
		}
	}
	add(MediaAudio, "mp3 mp2 mp1 ogg oga opus flac wav aif aiff aifc au snd m4a aac wma ape mpc mid midi ra ram mod xm it s3m wv")
	add(MediaVideo, "avi mkv mp4 m4v mpg mpeg mpe mov qt wmv asf flv webm ogm ogv 3gp divx xvid vob ts m2ts rm rmvb")
	add(MediaDocument, "txt text pdf ps eps doc docx odt ods odp rtf html htm xhtml xml tex md rst epub mobi djvu chm xls xlsx ppt pptx csv nfo")
	add(MediaImage, "jpg jpeg jpe png gif bmp tif tiff svg webp psd ico pcx tga xcf heic")
	add(MediaWindows, "exe msi msp com bat cmd dll cab zip rar arj ace lzh lha 7z iso bin cue nrg jar")
	add(MediaUnixMacOS, "sh csh pl py rpm deb gz gzip bz2 xz tar tgz taz z zoo shar hqx sit dmg 7z zip rar jar iso bin cue nrg jnlp")
	return m
}()

// mediaOf returns the media bits of a file name (0 when unknown).
func mediaOf(name string) uint8 {
	i := strings.LastIndexByte(name, '.')
	if i < 0 || i == len(name)-1 {
		return 0
	}
	ext := name[i+1:]
	if b, ok := mediaByExt[ext]; ok {
		return b
	}
	return mediaByExt[strings.ToLower(ext)]
}

// queryMediaMask returns the known bits of the Query's GGEP "M" extension
// (a little-endian integer of 1 to 4 bytes), or 0 when it has none, which
// means "any type". A mask with only unknown bits is also treated as 0, so
// that a future type we do not know does not silence us.
func queryMediaMask(q *protocol.Query) uint8 {
	for k := range q.Extensions {
		for _, x := range q.Extensions[k].GGEP {
			if x.ID != "M" || len(x.Data) == 0 || len(x.Data) > 4 {
				continue
			}
			var v uint32
			for i, c := range x.Data {
				v |= uint32(c) << (8 * i)
			}
			return uint8(v & mediaKnown)
		}
	}
	return 0
}

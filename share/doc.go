// Package share is the library of files a user shares: it scans the shared
// folders, hashes the files in the background (SHA-1, cached across
// restarts), gives each file a stable index, and answers Queries from a
// keyword index (docs/protocol.md §1.8, §1.11, §3.5, §4.1, §8.4). It sits
// above protocol (queries, URNs) and below servent, which asks it for
// answers and QRP keywords, and transfer, which serves its files.
//
// # What is shared
//
// Every regular, non-empty file under the configured folders, recursively,
// except hidden files and folders (a name starting with "."), partial and
// temporary files (see skipName: "*.part", "*.tmp", "*~", PartialPrefix…)
// and anything reached through a symbolic link. Symlinks are never
// followed, neither to folders nor to files: a link inside a share either
// points outside every share (and must not be followed) or at a file that
// the scan reaches by its own path anyway, so following one would add risk
// and nothing else. A configured folder that is itself a symlink is resolved
// once by Open, and that resolved folder is what is shared. Files are found
// again by index or SHA-1 in the library, never by mapping a requested path
// onto the file system (docs/protocol.md §8.4); OpenFile re-checks, at open time, that the
// path is still a regular file inside a share with no symlink on the way.
//
// # Matching rule
//
// Names and search texts go through Normalize (NFKD, case folding, accents
// dropped, punctuation to spaces) and are cut into words; words of one
// character are ignored, so a query with fewer than two useful characters
// in a word matches nothing by keyword.
//
// A query matches a file when EVERY query word is a prefix of some word of
// the file's name: the Query 0.4 spec's AND, and exactly LimeWire's rule
// (LW:`FileManager.search` intersects, for each query word, the files of
// keywordTrie.getPrefixedBy(word)). "quokka" and "quok"
// find "zebra_quokka_alpha.txt"; "quokka" does not find "zebraquokka.txt",
// and "okka" finds neither. Why not gtk-gnutella's rules:
//
//   - gtk answers when 2/3 of the words match (when there are 3 or more).
//     That looseness is right for QRP, whose job is to decide whether a query
//     might be worth sending somewhere (a false negative loses results; a
//     false positive costs a little bandwidth), but for a sharer that answers,
//     each partial match is a hit the user sees and did not ask for: someone
//     searching "red kangaroo" does not want "red_panda.txt". Routing looseness
//     is the QRP package's business, not ours.
//   - gtk matches query words as substrings of the name. That finds
//     "cat" in "education.pdf" and cannot use an inverted index; a prefix can,
//     with two binary searches in the sorted vocabulary. Prefixes keep the
//     useful part of substring matching: a user typing the start of a word
//     ("kanga", "platyp") still gets results, and QRP tables built the gtk
//     or LimeWire way (each word plus its shorter prefixes) route such
//     queries to us.
//
// A query may also carry URNs (urn:sha1, GGEP "H"/"u"): a file whose SHA-1 is
// one of them matches whatever the keywords say (docs/protocol.md §1.8: keywords OR any URN),
// and a query with an empty search text and a URN is a pure hash query.
// Files not hashed yet are found by name only. A GGEP "M" media mask, when
// present, keeps only files whose extension is of one of the asked types.
// Whether to answer at all (firewalled requester and firewalled us, docs/protocol.md §3.5;
// queries too short or too long, docs/protocol.md §8.5) is the servent's decision, not the
// library's.
//
// Results come at most Config.MaxResults per query: URN matches first, then
// keyword matches grouped by the words of the rarest query word in
// vocabulary order, so that files containing a query word whole come before
// files containing a longer word it is a prefix of.
package share

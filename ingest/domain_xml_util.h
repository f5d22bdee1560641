// Internals shared by domain_xml.cc and domain_xml_restore.cc, the two halves of
// domain_xml.h: loading and writing documents with pugixml, checks of strings that go
// into XML, and random bits. Only those two files include this header, and it is the
// only header that includes pugixml. Stateless and thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <pugixml.hpp>

#include "base/result.h"
#include "ingest/domain_xml.h"

namespace vmvault::ingest::internal {

// The value of attribute `name` of `node`, or `fallback` when there is none (also
// when `node` is null).
std::string Attr(pugi::xml_node node, const char* name, const char* fallback = "");
// Sets attribute `name`, adding it when missing.
void SetAttr(pugi::xml_node node, const char* name, const std::string& value);
// Removes every child element called `name`.
void RemoveChildren(pugi::xml_node node, const char* name);

// InvalidArgument naming `what` unless `s` is non-empty, valid UTF-8 and free of
// control characters (XML 1.0 cannot carry most of them).
Status CheckText(std::string_view s, std::string_view what);
// CheckText, and an absolute path.
Status CheckPath(std::string_view path, std::string_view what);

// Parses `xml` (UTF-8) into *doc. InvalidArgument with the line and column of the
// first error, or when the document does not have exactly one top-level element.
Status LoadXml(std::string_view xml, pugi::xml_document* doc);
// Reads the <domain> element `root` (see ParseDomainXml).
Result<DomainConfig> ParseDomain(pugi::xml_node root);
// The document indented by two spaces, without an XML declaration.
std::string Serialize(const pugi::xml_document& doc);

// Fills `size` bytes at `buf` from the kernel's random pool.
Status FillRandom(void* buf, size_t size);
// "52:54:00:xx:xx:xx" from the low 24 bits of `bits`.
std::string MacFromBits(uint32_t bits);

}  // namespace vmvault::ingest::internal

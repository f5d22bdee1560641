#include "tools/completion.h"

#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace vmvault::tools {
namespace {

enum class ValueKind { kNone, kFile, kDir, kVm, kWords };

// What the value of an option (or a positional) completes to, by its name; `command`
// narrows an entry to one command path ("" = any). New commands' options and
// positionals named like these (--vm, vm, --config, ...) are covered already.
struct ValueHint {
  std::string_view command;
  std::string_view name;
  ValueKind kind;
  std::string_view words = "";
};
constexpr ValueHint kValueHints[] = {
    {"", "--repo", ValueKind::kDir},
    {"", "--config", ValueKind::kFile},
    {"", "--log-file", ValueKind::kFile},
    {"", "--log-level", ValueKind::kWords, "error warning info debug"},
    {"", "--vm", ValueKind::kVm},
    {"", "vm", ValueKind::kVm},
    {"", "--tier", ValueKind::kWords, "hot warm cold"},
    {"", "mountpoint", ValueKind::kDir},
    {"ingest", "--file", ValueKind::kFile},
    {"ingest", "--device", ValueKind::kFile},
    {"ingest", "--virtualbox", ValueKind::kFile},
    {"ingest", "--work-dir", ValueKind::kDir},
    {"ingest", "--method", ValueKind::kWords, "backup snapshot pause"},
    {"ingest", "--format", ValueKind::kWords, "raw qcow2 vmdk vdi vhdx vpc"},
    {"restore", "--to", ValueKind::kFile},
    {"restore", "--format", ValueKind::kWords, "raw qcow2 vhdx vmdk"},
    {"mount", "--layout", ValueKind::kWords, "vm staging"},
    {"mount", "--views", ValueKind::kWords, "all raw qcow2 vhdx vmdk part"},
    {"archive", "VM", ValueKind::kVm},
    {"activate", "VM", ValueKind::kVm},
    {"restore", "--connect", ValueKind::kWords, "qemu:///system qemu:///session"},
    {"ingest", "--connect", ValueKind::kWords, "qemu:///system qemu:///session"},
};

const ValueHint* HintFor(const std::string& command, std::string_view name) {
  for (const ValueHint& h : kValueHints) {
    if (h.name == name && (h.command.empty() || h.command == command)) return &h;
  }
  return nullptr;
}

struct Opt {
  std::vector<std::string> names;  // "-q", "--quiet"
  bool takes_value = false;
  std::string description;
};

// A command path ("" for vmvault itself, "config check") and what it takes.
struct Node {
  std::string path;
  std::string description;
  std::vector<Opt> options;
  std::vector<std::string> positionals;
  std::vector<std::string> subcommands;  // the visible ones
};

// The first sentence, on one line.
std::string Short(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\t') c = ' ';
  }
  if (size_t dot = text.find(". "); dot != std::string::npos) text.resize(dot);
  if (size_t paren = text.find(" ("); paren != std::string::npos) text.resize(paren);
  return text;
}

void AddOptions(const CLI::App& app, Node& node) {
  for (const CLI::Option* o : app.get_options()) {
    if (o->get_positional() && o->get_lnames().empty() && o->get_snames().empty()) {
      node.positionals.push_back(o->get_name(true, false));
      continue;
    }
    Opt opt;
    for (const std::string& s : o->get_snames()) opt.names.push_back("-" + s);
    for (const std::string& l : o->get_lnames()) opt.names.push_back("--" + l);
    opt.takes_value = o->get_items_expected_max() > 0;  // flags expect 0 items
    opt.description = Short(o->get_description());
    node.options.push_back(std::move(opt));
  }
  // Option groups are nameless subcommands whose options belong to this command.
  for (const CLI::App* g : app.get_subcommands([](const CLI::App* s) { return s->get_name().empty(); })) {
    AddOptions(*g, node);
  }
}

void Walk(const CLI::App& app, const std::string& path, std::vector<Node>& out) {
  Node node{path, Short(app.get_description()), {}, {}, {}};
  AddOptions(app, node);
  const auto visible = [](const CLI::App* s) {
    return !s->get_name().empty() && !s->get_group().empty();
  };
  const auto subs = app.get_subcommands(visible);
  for (const CLI::App* s : subs) node.subcommands.push_back(s->get_name());
  out.push_back(std::move(node));
  for (const CLI::App* s : subs) {
    Walk(*s, path.empty() ? s->get_name() : path + " " + s->get_name(), out);
  }
}

std::vector<Node> Model(const CLI::App& app) {
  std::vector<Node> nodes;
  Walk(app, "", nodes);
  return nodes;
}

std::string Joined(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : " ") + s;
  return out;
}

// A generated case statement: `case "$1" in "PATH") echo "VALUE";; esac`.
std::string CaseEcho(const std::string& function, const std::vector<Node>& nodes,
                     const std::function<std::vector<std::string>(const Node&)>& items) {
  std::string out = function + "() {\n  case \"$1\" in\n";
  for (const Node& n : nodes) {
    const std::vector<std::string> v = items(n);
    if (!v.empty()) out += fmt::format("    \"{}\") echo \"{}\" ;;\n", n.path, Joined(v));
  }
  return out + "  esac\n}\n\n";
}

// The command and option names vmvault uses are plain words: no quoting needed in
// either shell. Descriptions go into zsh single quotes and [...].
std::string ZshText(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\'') out += "'\\''";
    else if (c == '[' || c == ']' || c == ':' || c == '\\') out += std::string("\\") + c;
    else out += c;
  }
  return out;
}

constexpr std::string_view kBashTail = R"SH(# VM names of the repository given with --repo (else the default one).
_vmvault_vms() {
  vmvault list ${1:+--repo "$1"} --json 2>/dev/null | sed -n 's/^    "name": "\([^"]*\)".*/\1/p'
}

_vmvault_complete_value() {  # PATH NAME REPO
  local kind
  kind=$(_vmvault_value_kind "$1" "$2")
  case $kind in
    file) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")) ;;
    dir) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur")) ;;
    vm) COMPREPLY=($(compgen -W "$(_vmvault_vms "$3")" -- "$cur")) ;;
    words:*) COMPREPLY=($(compgen -W "${kind#words:}" -- "$cur")) ;;
    *) COMPREPLY=() ;;
  esac
}

_vmvault() {
  local cur=${COMP_WORDS[COMP_CWORD]}
  local path="" repo="" pending="" npos=0 i w
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    if [[ -n $pending ]]; then
      [[ $pending == --repo ]] && repo=$w
      pending=""
      continue
    fi
    case $w in
      --repo=*) repo=${w#--repo=} ;;
      -*=*) ;;
      -*) [[ " $(_vmvault_value_options "$path") " == *" $w "* ]] && pending=$w ;;
      *)
        if ((npos == 0)) && [[ " $(_vmvault_subcommands "$path") " == *" $w "* ]]; then
          path=${path:+$path }$w
        else
          ((npos++))
        fi
        ;;
    esac
  done
  if [[ -n $pending ]]; then
    _vmvault_complete_value "$path" "$pending" "$repo"
    return
  fi
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$(_vmvault_options "$path")" -- "$cur"))
    return
  fi
  local subs
  subs=$(_vmvault_subcommands "$path")
  if [[ -n $subs ]] && ((npos == 0)); then
    COMPREPLY=($(compgen -W "$subs" -- "$cur"))
    return
  fi
  local positionals=($(_vmvault_positionals "$path"))
  if ((npos < ${#positionals[@]})); then
    _vmvault_complete_value "$path" "${positionals[npos]}" "$repo"
  fi
}

complete -F _vmvault vmvault
)SH";

std::string KindWord(const ValueHint* h) {
  if (h == nullptr) return "";
  switch (h->kind) {
    case ValueKind::kFile: return "file";
    case ValueKind::kDir: return "dir";
    case ValueKind::kVm: return "vm";
    case ValueKind::kWords: return "words:" + std::string(h->words);
    case ValueKind::kNone: return "";
  }
  return "";
}

std::string ZshAction(const ValueHint* h) {
  if (h == nullptr) return " ";
  switch (h->kind) {
    case ValueKind::kFile: return "_files";
    case ValueKind::kDir: return "_files -/";
    case ValueKind::kVm: return "_vmvault_vms";
    case ValueKind::kWords: return "(" + std::string(h->words) + ")";
    case ValueKind::kNone: return " ";
  }
  return " ";
}

std::string FunctionName(const std::string& path) {
  std::string out = "_vmvault";
  for (char c : path) out += (c == ' ' || c == '-') ? '_' : c;
  if (!path.empty()) out.insert(8, "_cmd_");
  return out;
}

}  // namespace

std::string BashCompletion(const CLI::App& app) {
  const std::vector<Node> nodes = Model(app);
  std::string out =
      "# bash completion for vmvault. Generated by `vmvault completion bash` from the\n"
      "# command line itself: do not edit.\n\n";
  out += CaseEcho("_vmvault_subcommands", nodes, [](const Node& n) { return n.subcommands; });
  out += CaseEcho("_vmvault_options", nodes, [](const Node& n) {
    std::vector<std::string> v;
    for (const Opt& o : n.options) v.insert(v.end(), o.names.begin(), o.names.end());
    return v;
  });
  out += CaseEcho("_vmvault_value_options", nodes, [](const Node& n) {
    std::vector<std::string> v;
    for (const Opt& o : n.options) {
      if (o.takes_value) v.insert(v.end(), o.names.begin(), o.names.end());
    }
    return v;
  });
  out += CaseEcho("_vmvault_positionals", nodes, [](const Node& n) { return n.positionals; });
  out += "_vmvault_value_kind() {  # PATH NAME\n  case \"$1|$2\" in\n";
  for (const Node& n : nodes) {
    std::vector<std::string> names = n.positionals;
    for (const Opt& o : n.options) {
      if (o.takes_value) names.insert(names.end(), o.names.begin(), o.names.end());
    }
    for (const std::string& name : names) {
      const std::string kind = KindWord(HintFor(n.path, name));
      if (!kind.empty()) out += fmt::format("    \"{}|{}\") echo \"{}\" ;;\n", n.path, name, kind);
    }
  }
  out += "  esac\n}\n\n";
  return out + std::string(kBashTail);
}

std::string ZshCompletion(const CLI::App& app) {
  const std::vector<Node> nodes = Model(app);
  std::string out =
      "#compdef vmvault\n"
      "# zsh completion for vmvault. Generated by `vmvault completion zsh` from the\n"
      "# command line itself: do not edit.\n\n"
      "# VM names of the repository given with --repo (else the default one).\n"
      "_vmvault_vms() {\n"
      "  local -a vms\n"
      "  local repo=${opt_args[--repo]}\n"
      "  vms=(${(f)\"$(vmvault list ${repo:+--repo \"$repo\"} --json 2>/dev/null |\n"
      "    sed -n 's/^    \"name\": \"\\([^\"]*\\)\".*/\\1/p')\"})\n"
      "  compadd -a vms\n"
      "}\n\n";
  for (const Node& n : nodes) {
    out += FunctionName(n.path) + "() {\n";
    if (!n.subcommands.empty()) {
      out += "  local curcontext=\"$curcontext\" state line ret=1\n  typeset -A opt_args\n";
    }
    out += "  _arguments -s -S";
    for (const Opt& o : n.options) {
      std::string exclusion;
      if (o.names.size() > 1) exclusion = "(" + Joined(o.names) + ")";
      const bool stops = o.names.back() == "--help" || o.names.back() == "--version";
      if (stops) exclusion = "(- *)";
      const ValueHint* hint = HintFor(n.path, o.names.back());
      const std::string value =
          o.takes_value ? fmt::format(":{}:{}", o.names.back().substr(2), ZshAction(hint)) : "";
      const std::string repeat = o.takes_value && !stops ? "*" : "";
      const std::string desc = "[" + ZshText(o.description) + "]";
      if (o.names.size() == 1) {
        out += fmt::format(" \\\n    '{}{}{}{}{}'", repeat.empty() ? exclusion : "", repeat,
                           o.names[0] + (o.takes_value ? "=" : ""), desc, value);
      } else {
        out += fmt::format(" \\\n    '{}{}'{{{}}}'{}{}'", repeat.empty() ? exclusion : "",
                           repeat, [&] {
                             std::string names;
                             for (const std::string& nm : o.names) {
                               names += (names.empty() ? "" : ",") + nm + (o.takes_value ? "=" : "");
                             }
                             return names;
                           }(),
                           desc, value);
      }
    }
    for (size_t i = 0; i < n.positionals.size(); ++i) {
      out += fmt::format(" \\\n    '{}:{}:{}'", i + 1, n.positionals[i],
                         ZshAction(HintFor(n.path, n.positionals[i])));
    }
    if (n.subcommands.empty()) {
      out += "\n}\n\n";
      continue;
    }
    out += " \\\n    '1:command:->command' \\\n    '*::arg:->args' && ret=0\n";
    out += "  case $state in\n    command)\n      local -a commands=(\n";
    for (const Node& child : nodes) {
      const size_t cut = child.path.rfind(' ');
      const std::string parent = cut == std::string::npos ? "" : child.path.substr(0, cut);
      if (child.path.empty() || parent != n.path) continue;
      const std::string name = cut == std::string::npos ? child.path : child.path.substr(cut + 1);
      out += fmt::format("        '{}:{}'\n", name, ZshText(child.description));
    }
    out += "      )\n      _describe -t commands 'vmvault command' commands && ret=0 ;;\n";
    out += "    args)\n      case $line[1] in\n";
    for (const std::string& sub : n.subcommands) {
      const std::string child = n.path.empty() ? sub : n.path + " " + sub;
      out += fmt::format("        {}) {} && ret=0 ;;\n", sub, FunctionName(child));
    }
    out += "      esac ;;\n  esac\n  return ret\n}\n\n";
  }
  return out + "_vmvault \"$@\"\n";
}

}  // namespace vmvault::tools

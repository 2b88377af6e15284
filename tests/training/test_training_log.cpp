// The training logs (engine/training/training_log.hpp): the CSV exactly as Keras's CSVLogger
// writes it (sorted columns, epoch from 0, Python's float repr, "\r\n" lines, append for
// resume), and the learning curves' SVG checked as XML by a small well-formedness checker.
#include <doctest/doctest.h>

#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "engine/training/training_log.hpp"
#include "tests/io/io_test_util.hpp"

namespace {

using fg::test::check_error;
using fg::test::read_bytes;

fg::EpochResult epoch_result(int64_t epoch, fg::TrainingLogs logs) {
  fg::EpochResult r;
  r.epoch = epoch;
  r.epochs = 10;
  r.logs = std::move(logs);
  return r;
}

const std::vector<std::string> kNames = {"loss", "accuracy", "val_loss", "val_accuracy"};

// ---------------------------------------------------------------------------------------------
// A minimal XML well-formedness checker: one root element, every tag closed in order, attributes
// quoted and not repeated, '<' and '&' only as markup or entities. Collects the elements.
struct Element {
  std::string name;
  std::map<std::string, std::string> attrs;
  std::string text;  // character data directly inside
};

struct XmlDocument {
  std::vector<Element> elements;
  std::string error;  // empty when well-formed

  std::vector<const Element*> all(const std::string& name) const {
    std::vector<const Element*> out;
    for (const auto& e : elements)
      if (e.name == name) out.push_back(&e);
    return out;
  }
};

bool valid_entities(const std::string& s) {
  for (size_t i = s.find('&'); i != std::string::npos; i = s.find('&', i + 1)) {
    bool known = false;
    for (const char* e : {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"})
      known = known || s.compare(i, std::strlen(e), e) == 0;
    if (!known) return false;
  }
  return s.find('<') == std::string::npos;
}

bool name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == ':' || c == '_';
}

XmlDocument parse_xml(const std::string& doc) {
  XmlDocument out;
  std::vector<size_t> open;  // indices into elements
  size_t i = 0, roots = 0;
  if (doc.compare(0, 5, "<?xml") == 0) i = doc.find("?>") + 2;
  const auto fail = [&](const std::string& why) {
    out.error = why + " at character " + std::to_string(i);
    return out;
  };
  while (i < doc.size()) {
    const size_t lt = doc.find('<', i);
    const std::string text = doc.substr(i, lt == std::string::npos ? std::string::npos : lt - i);
    if (!valid_entities(text)) return fail("bad character data");
    if (!open.empty())
      out.elements[open.back()].text += text;
    else if (text.find_first_not_of(" \n") != std::string::npos)
      return fail("text outside root");
    if (lt == std::string::npos) break;
    i = lt + 1;
    if (doc[i] == '/') {
      size_t end = doc.find('>', i);
      if (end == std::string::npos) return fail("unclosed end tag");
      const std::string name = doc.substr(i + 1, end - i - 1);
      if (open.empty() || out.elements[open.back()].name != name)
        return fail("mismatched </" + name + ">");
      open.pop_back();
      i = end + 1;
      continue;
    }
    Element e;
    while (i < doc.size() && name_char(doc[i])) e.name += doc[i++];
    if (e.name.empty()) return fail("empty tag name");
    bool self_closing = false;
    while (true) {
      while (i < doc.size() && doc[i] == ' ') ++i;
      if (i >= doc.size()) return fail("unclosed tag");
      if (doc[i] == '>') {
        ++i;
        break;
      }
      if (doc.compare(i, 2, "/>") == 0) {
        i += 2;
        self_closing = true;
        break;
      }
      std::string key;
      while (i < doc.size() && name_char(doc[i])) key += doc[i++];
      if (key.empty() || doc[i] != '=' || doc[i + 1] != '"')
        return fail("bad attribute in <" + e.name + ">");
      const size_t close = doc.find('"', i + 2);
      if (close == std::string::npos) return fail("unterminated attribute");
      const std::string value = doc.substr(i + 2, close - i - 2);
      if (!valid_entities(value)) return fail("bad attribute value");
      if (!e.attrs.emplace(key, value).second) return fail("repeated attribute " + key);
      i = close + 1;
    }
    if (open.empty() && ++roots > 1) return fail("second root element");
    out.elements.push_back(e);
    if (!self_closing) open.push_back(out.elements.size() - 1);
  }
  if (!open.empty()) return fail("unclosed <" + out.elements[open.back()].name + ">");
  if (roots != 1) return fail("no root element");
  return out;
}

// The "x,y" pairs of a polyline's points attribute.
std::vector<std::pair<double, double>> points_of(const Element& polyline) {
  std::vector<std::pair<double, double>> out;
  const std::string& s = polyline.attrs.at("points");
  size_t i = 0;
  while (i < s.size()) {
    size_t comma = s.find(',', i), space = s.find(' ', comma);
    out.emplace_back(
        std::stod(s.substr(i, comma - i)),
        std::stod(s.substr(comma + 1, space == std::string::npos ? space : space - comma - 1)));
    i = space == std::string::npos ? s.size() : space + 1;
  }
  return out;
}

}  // namespace

TEST_CASE("python_float_repr: the shortest round trip, as Python's repr writes it") {
  CHECK(fg::python_float_repr(1.0) == "1.0");
  CHECK(fg::python_float_repr(0.75) == "0.75");
  CHECK(fg::python_float_repr(0.1) == "0.1");
  CHECK(fg::python_float_repr(1.0 / 3) == "0.3333333333333333");
  CHECK(fg::python_float_repr(0.0001) == "0.0001");
  CHECK(fg::python_float_repr(1e-05) == "1e-05");
  CHECK(fg::python_float_repr(12345678.0) == "12345678.0");
  CHECK(fg::python_float_repr(1e16) == "1e+16");
  CHECK(fg::python_float_repr(-2.5) == "-2.5");
  CHECK(fg::python_float_repr(0.0) == "0.0");
  CHECK(fg::python_float_repr(std::nan("")) == "nan");
  CHECK(fg::python_float_repr(-INFINITY) == "-inf");
  // a float32 value widened to double, as Keras's logs hold them
  CHECK(fg::python_float_repr(static_cast<double>(0.4123f)) == "0.4122999906539917");
  CHECK(fg::python_float_repr(1e15) == "1000000000000000.0");
  CHECK(fg::python_float_repr(123456789012345680.0) == "1.2345678901234568e+17");
  CHECK(fg::python_float_repr(5e-324) == "5e-324");
}

TEST_CASE("CsvLogger: Keras's header, sorted names, epoch from 0, flushed after every epoch") {
  fg::test::TempDir dir;
  const std::string path = dir.file("log.csv");
  fg::test::write_bytes(path, "old contents\n");  // without append: truncated when training begins
  fg::CsvLogger log(path);
  log.on_train_begin(kNames);
  CHECK(read_bytes(path).empty());
  log.on_epoch_begin(0, 10, 5);
  log.on_epoch_end(epoch_result(
      0, {{"loss", 0.5}, {"accuracy", 0.75}, {"val_loss", 0.25}, {"val_accuracy", 1.0}}));
  CHECK(read_bytes(path) == "epoch,accuracy,loss,val_accuracy,val_loss\r\n0,0.75,0.5,1.0,0.25\r\n");
  log.on_epoch_begin(1, 10, 5);
  log.on_epoch_end(epoch_result(1, {{"loss", 1.0 / 3}, {"accuracy", 1e-05}, {"val_loss", 0.1}}));
  CHECK(read_bytes(path) ==
        "epoch,accuracy,loss,val_accuracy,val_loss\r\n0,0.75,0.5,1.0,0.25\r\n"
        "1,1e-05,0.3333333333333333,NA,0.1\r\n");
  log.on_train_end({});
}

TEST_CASE("CsvLogger: several outputs sort as Python sorts, names from the first epoch") {
  fg::test::TempDir dir;
  const std::string path = dir.file("multi.csv");
  fg::CsvLogger log(path, false, ';');
  log.on_train_begin({});
  log.on_epoch_end(epoch_result(0, {{"loss", 2.0},
                                    {"classifier_loss", 1.5},
                                    {"score_loss", 0.5},
                                    {"classifier_accuracy", 0.25},
                                    {"val_loss", 3.0},
                                    {"Val_x", 1.0}}));
  CHECK(read_bytes(path) ==
        "epoch;Val_x;classifier_accuracy;classifier_loss;loss;score_loss;val_loss\r\n"
        "0;1.0;0.25;1.5;2.0;0.5;3.0\r\n");
}

TEST_CASE("CsvLogger append: resume adds rows, drops the epochs being redone, checks the header") {
  fg::test::TempDir dir;
  const std::string path = dir.file("log.csv");
  const std::string header = "epoch,accuracy,loss,val_accuracy,val_loss\r\n";
  fg::test::write_bytes(path, header +
                                  "0,0.5,1.0,0.5,1.0\r\n1,0.6,0.9,0.6,0.9\r\n"
                                  "2,0.7,0.8,0.7,0.8\r\n");
  {
    // The checkpoint was of epoch 2 (epochs 0 and 1 done): the logged epoch 2 is redone.
    fg::CsvLogger log(path, /*append=*/true);
    log.on_train_begin(kNames);
    log.on_epoch_begin(2, 4, 5);
    CHECK(read_bytes(path) == header + "0,0.5,1.0,0.5,1.0\r\n1,0.6,0.9,0.6,0.9\r\n");
    log.on_epoch_end(epoch_result(
        2, {{"loss", 0.75}, {"accuracy", 0.625}, {"val_loss", 0.5}, {"val_accuracy", 0.875}}));
    log.on_epoch_begin(3, 4, 5);
    log.on_epoch_end(epoch_result(
        3, {{"loss", 0.5}, {"accuracy", 0.75}, {"val_loss", 0.25}, {"val_accuracy", 1.0}}));
    log.on_train_end({});
  }
  CHECK(read_bytes(path) == header +
                                "0,0.5,1.0,0.5,1.0\r\n1,0.6,0.9,0.6,0.9\r\n"
                                "2,0.625,0.75,0.875,0.5\r\n3,0.75,0.5,1.0,0.25\r\n");
  {
    // Appending to a file that is not there writes the header (Keras: an empty first line).
    const std::string fresh = dir.file("fresh.csv");
    fg::CsvLogger log(fresh, true);
    log.on_train_begin({"loss"});
    log.on_epoch_begin(0, 1, 1);
    log.on_epoch_end(epoch_result(0, {{"loss", 4.0}}));
    CHECK(read_bytes(fresh) == "epoch,loss\r\n0,4.0\r\n");
  }
  {
    // Another training's log: refused before any epoch, the file left as it was.
    const std::string before = read_bytes(path);
    fg::CsvLogger log(path, true);
    check_error(
        [&] {
          log.on_train_begin({"loss", "mae"});
        },
        {"log.csv", "cannot append", "'epoch,accuracy,loss,val_accuracy,val_loss'",
         "'epoch,loss,mae'"});
    CHECK(read_bytes(path) == before);
  }
  check_error([&] { fg::CsvLogger log(dir.path().string()); }, {"the CSV log"});
}

TEST_CASE("read_csv_log and learning_curves_path") {
  fg::test::TempDir dir;
  const std::string path = dir.file("log.csv");
  fg::test::write_bytes(path,
                        "epoch,accuracy,loss,val_loss\r\n0,0.5,1.0,NA\r\n1,0.75,0.5,0.625\r\n");
  const auto history = fg::read_csv_log(path);
  REQUIRE(history.size() == 2);
  CHECK(history[0].epoch == 0);
  CHECK(history[0].logs == fg::TrainingLogs{{"accuracy", 0.5}, {"loss", 1.0}});
  CHECK(history[1].logs ==
        fg::TrainingLogs{{"accuracy", 0.75}, {"loss", 0.5}, {"val_loss", 0.625}});
  fg::test::write_bytes(path, "step,loss\n0,1.0\n");
  check_error([&] { fg::read_csv_log(path); }, {"log.csv", "not a training log"});
  CHECK(fg::learning_curves_path("run/log.csv") == "run/log.svg");
  CHECK(fg::learning_curves_path("run/log") == "run/log.svg");
  CHECK(fg::learning_curves_path("log.txt") == "log.txt.svg");
}

TEST_CASE("learning curves: a panel per quantity, training solid, validation dashed") {
  std::vector<fg::EpochResult> history;
  const double loss[] = {1.0, 0.5, 0.25}, val_loss[] = {1.25, 0.75, std::nan("")};
  for (int e = 0; e < 3; ++e)
    history.push_back(epoch_result(e, {{"loss", loss[e]},
                                       {"accuracy", 0.5 + 0.125 * e},
                                       {"val_loss", val_loss[e]},
                                       {"val_accuracy", 0.5}}));
  const std::string svg = fg::learning_curves_svg(history);
  const XmlDocument doc = parse_xml(svg);
  INFO(doc.error);
  REQUIRE(doc.error.empty());
  REQUIRE(!doc.elements.empty());
  CHECK(doc.elements[0].name == "svg");
  CHECK(doc.elements[0].attrs.at("xmlns") == "http://www.w3.org/2000/svg");
  std::vector<std::string> titles;
  for (const Element* t : doc.all("text"))
    if (t->attrs.count("class") && t->attrs.at("class") == "title") titles.push_back(t->text);
  CHECK(titles == std::vector<std::string>{"loss", "accuracy"});
  int panels = 0;
  for (const Element* g : doc.all("g"))
    panels += g->attrs.count("class") && g->attrs.at("class") == "panel";
  CHECK(panels == 2);
  std::vector<const Element*> training, validation;
  for (const Element* p : doc.all("polyline"))
    (p->attrs.at("class") == "training" ? training : validation).push_back(p);
  REQUIRE(training.size() == 2);
  REQUIRE(validation.size() == 2);
  CHECK(points_of(*training[0]).size() == 3);
  CHECK(points_of(*validation[0]).size() == 2);  // the NaN is left out
  CHECK(points_of(*training[1]).size() == 3);
  CHECK(points_of(*validation[1]).size() == 3);
  CHECK(training[0]->attrs.count("stroke-dasharray") == 0);
  CHECK(validation[0]->attrs.count("stroke-dasharray") == 1);
  // The loss falls: its line goes down the panel (SVG's y grows downwards), evenly in x.
  const auto lp = points_of(*training[0]);
  CHECK(lp[0].second < lp[1].second);
  CHECK(lp[1].second < lp[2].second);
  CHECK(lp[1].first - lp[0].first == doctest::Approx(lp[2].first - lp[1].first));
  for (const Element* p : doc.all("polyline")) {
    for (const auto& [x, y] : points_of(*p)) {
      CHECK(x >= 0);
      CHECK(x <= 380);
      CHECK(y >= 0);
      CHECK(y <= 250);
    }
  }
  // The constant val_accuracy still gets a range (no division by zero): finite coordinates.
  for (const auto& [x, y] : points_of(*validation[1])) CHECK(std::isfinite(y));
  int legend_entries = 0;
  for (const Element* t : doc.all("text"))
    legend_entries += t->text == "training" || t->text == "validation";
  CHECK(legend_entries == 4);
}

TEST_CASE("learning curves: one epoch, names to escape, no epochs") {
  const std::string one = fg::learning_curves_svg({epoch_result(0, {{"a<b&c", 0.5}})});
  const XmlDocument doc = parse_xml(one);
  INFO(doc.error);
  REQUIRE(doc.error.empty());
  CHECK(doc.all("circle").size() == 1);  // a lone point gets a marker
  CHECK(one.find("a&lt;b&amp;c") != std::string::npos);
  const XmlDocument empty = parse_xml(fg::learning_curves_svg({}));
  CHECK(empty.error.empty());
  CHECK(empty.all("polyline").empty());
}

TEST_CASE("LearningCurves: rewritten after every epoch, a resume drops the epochs redone") {
  fg::test::TempDir dir;
  const std::string path = dir.file("log.svg");
  std::vector<fg::EpochResult> earlier = {epoch_result(0, {{"loss", 1.0}}),
                                          epoch_result(1, {{"loss", 0.9}}),
                                          epoch_result(2, {{"loss", 0.8}})};
  fg::LearningCurves curves(path, earlier);
  curves.on_epoch_begin(2, 4, 1);
  CHECK(curves.history().size() == 2);
  curves.on_epoch_end(epoch_result(2, {{"loss", 0.7}}));
  XmlDocument doc = parse_xml(read_bytes(path));
  REQUIRE(doc.error.empty());
  REQUIRE(doc.all("polyline").size() == 1);
  CHECK(points_of(*doc.all("polyline")[0]).size() == 3);
  curves.on_epoch_begin(3, 4, 1);
  curves.on_epoch_end(epoch_result(3, {{"loss", 0.6}, {"val_loss", 0.65}}));
  doc = parse_xml(read_bytes(path));
  REQUIRE(doc.error.empty());
  REQUIRE(doc.all("polyline").size() == 2);
  CHECK(points_of(*doc.all("polyline")[0]).size() == 4);
  CHECK(points_of(*doc.all("polyline")[1]).size() == 1);
  // no temporary files left beside it
  CHECK(dir.entries() == std::vector<std::string>{"log.svg"});
}

package paymentd.peer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * Card number (PAN) detection and redaction: a line-by-line port of paymentd's
 * src/payments/src/pan.cc (FindPans, ContainsPan, RedactPans), working on UTF-8 bytes like the
 * original. The raw-bytes redactor of the dead-letter path (RedactPanBytes) is not ported: the peer
 * has no dead-letter topic.
 */
final class Pan {
  private static final int MIN_PAN_DIGITS = 13;
  private static final int MAX_PAN_DIGITS = 19;
  private static final int KEPT_DIGITS = 4;
  private static final int MAX_SEPARATOR_CHARS = 3;
  private static final int MAX_GLUED_DIGITS = 7;
  private static final int MIN_GLUED_PAN_DIGITS = 14;
  private static final int MAX_GLUED_PAN_DIGITS = 16;
  private static final int MAX_CANDIDATE = MAX_PAN_DIGITS + MAX_GLUED_DIGITS;
  private static final int[] GLUED = {3, 4, 7};

  private Pan() {}

  /** [begin, end) byte range of a PAN, separators included. */
  record Span(int begin, int end) {}

  private record Group(int begin, int end) {}

  private interface SpanSink {
    /** Returns true to stop the scan. */
    boolean accept(Span span);
  }

  static boolean isDigit(byte b) {
    return b >= '0' && b <= '9';
  }

  static int countDigits(byte[] text) {
    int n = 0;
    for (byte b : text) if (isDigit(b)) ++n;
    return n;
  }

  private static int at(byte[] t, int i) {
    return i < t.length ? (t[i] & 0xff) : 0;
  }

  /** Length in bytes of the separator character at text[pos], or 0. */
  static int separatorAt(byte[] t, int pos) {
    switch (at(t, pos)) {
      case ' ', '\t', '-', '.', '/', '_':
        return 1;
      case 0xC2: // U+00A0
        return at(t, pos + 1) == 0xA0 ? 2 : 0;
      case 0xE2: {
        if (at(t, pos + 1) == 0x80) {
          int c = at(t, pos + 2);
          if ((c >= 0x87 && c <= 0x8A) || (c >= 0x90 && c <= 0x95) || c == 0xAF) return 3;
        }
        if (at(t, pos + 1) == 0x88 && at(t, pos + 2) == 0x92) return 3; // U+2212
        return 0;
      }
      case 0xE3: // U+3000
        return at(t, pos + 1) == 0x80 && at(t, pos + 2) == 0x80 ? 3 : 0;
      default:
        return 0;
    }
  }

  /** Calls scanRun for every run of digit groups joined by separators; stops when it says so. */
  private static void forEachRun(byte[] text, SpanSink sink) {
    List<Group> groups = new ArrayList<>();
    int i = 0;
    while (i < text.length) {
      if (!isDigit(text[i])) {
        ++i;
        continue;
      }
      groups.clear();
      while (true) {
        int begin = i;
        while (i < text.length && isDigit(text[i])) ++i;
        groups.add(new Group(begin, i));
        int j = i;
        int separators = 0;
        while (separators < MAX_SEPARATOR_CHARS) {
          int len = separatorAt(text, j);
          if (len == 0) break;
          j += len;
          ++separators;
        }
        if (separators > 0 && j < text.length && isDigit(text[j])) {
          i = j;
          continue;
        }
        break;
      }
      if (scanRun(text, groups, sink)) return;
    }
  }

  private record IssuerRange(int low, int high, int prefixDigits, int length) {}

  private static final IssuerRange[] ISSUER_RANGES = {
    new IssuerRange(4, 4, 1, 16),
    new IssuerRange(51, 55, 2, 16),
    new IssuerRange(2221, 2720, 4, 16),
    new IssuerRange(34, 34, 2, 15),
    new IssuerRange(37, 37, 2, 15),
    new IssuerRange(6011, 6011, 4, 16),
    new IssuerRange(644, 649, 3, 16),
    new IssuerRange(65, 65, 2, 16),
    new IssuerRange(3528, 3589, 4, 16),
    new IssuerRange(36, 36, 2, 14),
    new IssuerRange(300, 305, 3, 16),
    new IssuerRange(3095, 3095, 4, 16),
    new IssuerRange(38, 39, 2, 16),
    new IssuerRange(62, 62, 2, 16),
    new IssuerRange(5018, 5018, 4, 16),
    new IssuerRange(5020, 5020, 4, 16),
    new IssuerRange(5038, 5038, 4, 16),
    new IssuerRange(5893, 5893, 4, 16),
    new IssuerRange(6304, 6304, 4, 16),
    new IssuerRange(6759, 6759, 4, 16),
    new IssuerRange(6761, 6763, 4, 16),
    new IssuerRange(2200, 2204, 4, 16),
    new IssuerRange(60, 60, 2, 16),
    new IssuerRange(81, 82, 2, 16),
    new IssuerRange(508, 508, 3, 16),
  };

  private static boolean isAmex(byte[] d, int n) {
    return n == 15 && d[0] == '3' && (d[1] == '4' || d[1] == '7');
  }

  private static boolean plausibleGluedSuffix(byte[] d, int panDigits, int suffixLen) {
    int s = panDigits;
    boolean monthOk = suffixLen >= 2 && ((d[s] - '0') * 10 + (d[s + 1] - '0')) >= 1
        && ((d[s] - '0') * 10 + (d[s + 1] - '0')) <= 12;
    return switch (suffixLen) {
      case 3 -> true;
      case 4 -> monthOk || isAmex(d, panDigits);
      case 7 -> monthOk;
      default -> false;
    };
  }

  private static boolean sameBytes(byte[] t, int a0, int a1, int b0, int b1) {
    return Arrays.equals(t, a0, a1, t, b0, b1);
  }

  private static boolean classic(byte[] t, int b, int e) {
    return e - b == 1 && (t[b] == ' ' || t[b] == '-');
  }

  private static boolean compatibleSeparators(
      byte[] t, Group prevA, Group a, Group prevB, Group b) {
    if (sameBytes(t, prevA.end, a.begin, prevB.end, b.begin)) return true;
    return classic(t, prevA.end, a.begin) && classic(t, prevB.end, b.begin);
  }

  static boolean luhnValid(byte[] d, int n) {
    if (n == 0) return false;
    int sum = 0;
    boolean doubleIt = false;
    for (int k = n - 1; k >= 0; --k) {
      if (!isDigit(d[k])) return false;
      int x = d[k] - '0';
      if (doubleIt) {
        x *= 2;
        if (x > 9) x -= 9;
      }
      sum += x;
      doubleIt = !doubleIt;
    }
    return sum % 10 == 0;
  }

  static boolean issuerShapeValid(byte[] d, int n) {
    if (n < MIN_PAN_DIGITS || n > MAX_PAN_DIGITS) return false;
    for (int k = 0; k < n; ++k) if (!isDigit(d[k])) return false;
    int[] prefix = new int[5];
    for (int k = 1; k <= 4; ++k) prefix[k] = prefix[k - 1] * 10 + (d[k - 1] - '0');
    for (IssuerRange r : ISSUER_RANGES) {
      int p = prefix[r.prefixDigits];
      if (p >= r.low && p <= r.high && n == r.length) return true;
    }
    return false;
  }

  /** Returns true when the sink asked to stop. */
  private static boolean scanRun(byte[] text, List<Group> groups, SpanSink sink) {
    int count = 0;
    for (Group g : groups) count += g.end - g.begin;
    if (count < MIN_PAN_DIGITS) return false;
    byte[] digits = new byte[MAX_CANDIDATE];
    int[] position = new int[MAX_CANDIDATE];
    for (int i = 0; i < groups.size(); ++i) {
      int total = 0;
      for (int j = i; j < groups.size(); ++j) {
        if (j > i + 1
            && !compatibleSeparators(
                text, groups.get(i), groups.get(i + 1), groups.get(j - 1), groups.get(j))) {
          break;
        }
        Group gj = groups.get(j);
        int groupDigits = gj.end - gj.begin;
        if (total + groupDigits > MAX_CANDIDATE) break;
        for (int p = gj.begin; p < gj.end; ++p) {
          digits[total] = text[p];
          position[total++] = p;
        }
        if (total >= MIN_PAN_DIGITS && total <= MAX_PAN_DIGITS && luhnValid(digits, total)) {
          if (sink.accept(new Span(groups.get(i).begin, gj.end))) return true;
        }
        for (int glued : GLUED) {
          if (glued >= groupDigits || glued >= total) continue;
          int panDigits = total - glued;
          if (panDigits < MIN_GLUED_PAN_DIGITS || panDigits > MAX_GLUED_PAN_DIGITS) continue;
          if (plausibleGluedSuffix(digits, panDigits, glued)
              && issuerShapeValid(digits, panDigits)
              && luhnValid(digits, panDigits)) {
            if (sink.accept(new Span(groups.get(i).begin, position[panDigits - 1] + 1))) {
              return true;
            }
          }
        }
      }
    }
    return false;
  }

  static List<Span> findPans(byte[] text) {
    List<Span> pans = new ArrayList<>();
    forEachRun(text, s -> {
      pans.add(s);
      return false;
    });
    pans.sort(Comparator.comparingInt(Span::begin).thenComparingInt(Span::end));
    List<Span> unique = new ArrayList<>(pans.size());
    for (Span s : pans) if (unique.isEmpty() || !unique.get(unique.size() - 1).equals(s)) unique.add(s);
    return unique;
  }

  static boolean containsPan(byte[] text) {
    if (countDigits(text) < MIN_PAN_DIGITS) return false;
    boolean[] found = {false};
    forEachRun(text, s -> {
      found[0] = true;
      return true;
    });
    return found[0];
  }

  static byte[] redactPans(byte[] text) {
    byte[] out = text.clone();
    if (countDigits(text) < MIN_PAN_DIGITS) return out;
    for (Span span : findPans(text)) {
      int kept = 0;
      int pos = span.end;
      while (pos > span.begin && kept < KEPT_DIGITS) {
        --pos;
        if (isDigit(text[pos])) ++kept;
      }
      for (int k = span.begin; k < pos; ++k) if (isDigit(text[k])) out[k] = '*';
      for (int k = span.end; k < text.length && isDigit(text[k]); ++k) out[k] = '*';
    }
    return out;
  }
}

// Java's java.net.http.HttpClient against h2c-mux, for interop/run.
//
//     java interop/JavaClient.java PORT
//
// (single-file source launch, JDK 11+). With Version.HTTP_2 and http:// URLs the
// client asks for the cleartext upgrade (Upgrade: h2c) on its first request to a
// host and, if that gets a 101, uses the HTTP/2 connection for later requests.
// Each case uses a fresh HttpClient, so each case's first request is an upgrade
// attempt. Prints one line per case:
//
//     CASE <name> OK <protocols negotiated, request by request> <detail>
//     CASE <name> FAIL <reason>
//
// and exits 0 when every case passed, 1 otherwise.

import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

public class JavaClient {
    static final Duration TIMEOUT = Duration.ofSeconds(10);
    static String base;

    static HttpClient client() {
        return HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_2)
                .connectTimeout(TIMEOUT)
                .build();
    }

    static String proto(HttpResponse<?> r) {
        return r.version() == HttpClient.Version.HTTP_2 ? "HTTP_2" : r.version().toString();
    }

    static HttpResponse<byte[]> send(HttpClient c, HttpRequest.Builder b) throws Exception {
        return c.send(b.timeout(TIMEOUT).build(), HttpResponse.BodyHandlers.ofByteArray());
    }

    static void expect(HttpResponse<byte[]> r, byte[] want, String what) {
        if (r.statusCode() != 200) {
            throw new IllegalStateException(what + ": status " + r.statusCode());
        }
        if (!Arrays.equals(r.body(), want)) {
            int n = Math.min(r.body().length, want.length);
            int i = 0;
            while (i < n && r.body()[i] == want[i]) i++;
            throw new IllegalStateException(what + ": body of " + r.body().length
                    + " bytes, want " + want.length + "; first difference at byte " + i);
        }
    }

    static byte[] payload(int n) {
        byte[] b = new byte[n];
        long x = 0x9E3779B97F4A7C15L;
        for (int i = 0; i < n; i++) {
            x ^= x << 13; x ^= x >>> 7; x ^= x << 17;
            b[i] = (byte) x;
        }
        return b;
    }

    /** GET /, then POST /echo with a known-length body, on one client. */
    static String getThenPost() throws Exception {
        HttpClient c = client();
        HttpResponse<byte[]> r1 = send(c, HttpRequest.newBuilder(URI.create(base + "/")).GET());
        expect(r1, "hello world\n".getBytes(StandardCharsets.US_ASCII), "GET /");
        String body = "posted by java.net.http over h2c: " + "0123456789".repeat(50);
        HttpResponse<byte[]> r2 = send(c, HttpRequest.newBuilder(URI.create(base + "/echo"))
                .POST(HttpRequest.BodyPublishers.ofString(body)));
        expect(r2, body.getBytes(StandardCharsets.UTF_8), "POST /echo (ofString)");
        return "GET=" + proto(r1) + " POST=" + proto(r2) + " (" + body.length() + "-byte echo ok)";
    }

    /** POST /echo with a known-length body as the client's first request. */
    static String postStringFirst() throws Exception {
        HttpClient c = client();
        byte[] body = payload(20000);
        HttpResponse<byte[]> r = send(c, HttpRequest.newBuilder(URI.create(base + "/echo"))
                .POST(HttpRequest.BodyPublishers.ofByteArray(body)));
        expect(r, body, "POST /echo (known length)");
        HttpResponse<byte[]> r2 = send(c, HttpRequest.newBuilder(URI.create(base + "/")).GET());
        expect(r2, "hello world\n".getBytes(StandardCharsets.US_ASCII), "GET / after it");
        return "POST=" + proto(r) + " GET=" + proto(r2) + " (20000-byte echo ok)";
    }

    /** POST /echo with a streamed body of unknown length (sent chunked). */
    static String postStream() throws Exception {
        HttpClient c = client();
        byte[] body = payload(100000);
        HttpResponse<byte[]> r = send(c, HttpRequest.newBuilder(URI.create(base + "/echo"))
                .POST(HttpRequest.BodyPublishers.ofInputStream(
                        () -> (InputStream) new ByteArrayInputStream(body))));
        expect(r, body, "POST /echo (ofInputStream)");
        HttpResponse<byte[]> r2 = send(c, HttpRequest.newBuilder(URI.create(base + "/")).GET());
        expect(r2, "hello world\n".getBytes(StandardCharsets.US_ASCII), "GET / after it");
        return "POST=" + proto(r) + " GET=" + proto(r2) + " (100000-byte echo ok)";
    }

    interface Case { String run() throws Exception; }

    public static void main(String[] args) {
        if (args.length < 1) {
            System.err.println("usage: java JavaClient.java PORT [case...]");
            System.exit(2);
        }
        base = "http://127.0.0.1:" + args[0];
        List<String> names = args.length > 1
                ? Arrays.asList(args).subList(1, args.length)
                : List.of("get-post", "post-first", "post-stream");
        boolean allOk = true;
        for (String name : names) {
            Case k;
            switch (name) {
                case "get-post": k = JavaClient::getThenPost; break;
                case "post-first": k = JavaClient::postStringFirst; break;
                case "post-stream": k = JavaClient::postStream; break;
                default: System.out.println("CASE " + name + " FAIL unknown case"); allOk = false; continue;
            }
            try {
                System.out.println("CASE " + name + " OK " + k.run());
            } catch (Exception e) {
                allOk = false;
                String msg = String.valueOf(e.getMessage()).replace('\n', ' ');
                System.out.println("CASE " + name + " FAIL " + e.getClass().getSimpleName() + ": " + msg);
            }
            System.out.flush();
        }
        System.exit(allOk ? 0 : 1);
    }
}

// Principals and ACLs of the riverguard Kafka cluster, applied by deploy/stack.sh after the
// brokers are up:  java -cp "<kafka libs>/*" deploy/kafka/Access.java <broker> <tls dir> <acls> <secrets dir>
//
// It connects to a broker's inter-broker listener with the brokers' own certificate (mTLS; the
// brokers' principal is a super user), so it works on a fresh cluster and on one whose data was
// created before the principals existed. Then:
//   - every file <secrets dir>/<user> makes a principal User:<user> with a SCRAM-SHA-512
//     credential whose password is the file's first line (upsert: a changed password is rotated);
//   - the cluster's ALLOW ACLs of those principals become exactly the ACL file's: missing ones
//     are created, ones no longer in the file deleted. Other principals' ACLs are not touched.
// Passwords are read from files, never taken from the command line, never printed.
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialAlteration;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public class Access {
    // RFC 7677 asks for at least 4096 iterations; Kafka's default is 4096 too.
    static final int SCRAM_ITERATIONS = 8192;

    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: Access.java <broker host:port> <tls dir> <acl file> <secrets dir>");
            System.exit(2);
        }
        Path tls = Path.of(args[1]);
        Path secrets = Path.of(args[3]);
        Set<String> users = new TreeSet<>();
        try (Stream<Path> files = Files.list(secrets)) {
            files.filter(Files::isRegularFile).forEach(f -> users.add(f.getFileName().toString()));
        }
        Set<String> principals = new HashSet<>();
        for (String user : users) principals.add("User:" + user);
        List<AclBinding> wanted = parse(Path.of(args[2]));
        for (AclBinding b : wanted) {
            if (!principals.contains(b.entry().principal())) {
                throw new IllegalArgumentException(args[2] + ": " + b.entry().principal() + " has no password file in " + secrets);
            }
        }

        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put("security.protocol", "SSL");
        props.put("ssl.keystore.type", "PEM");
        props.put("ssl.keystore.location", tls.resolve("kafka.pem").toString());
        props.put("ssl.truststore.type", "PEM");
        props.put("ssl.truststore.location", tls.resolve("ca.pem").toString());
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "20000");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "60000");
        try (Admin admin = Admin.create(props)) {
            List<UserScramCredentialAlteration> credentials = new ArrayList<>();
            for (String user : users) {
                String password = password(secrets.resolve(user));
                credentials.add(new UserScramCredentialUpsertion(
                        user, new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS), password));
            }
            admin.alterUserScramCredentials(credentials).all().get(60, TimeUnit.SECONDS);

            Collection<AclBinding> existing = admin.describeAcls(AclBindingFilter.ANY).values().get(60, TimeUnit.SECONDS);
            Set<AclBinding> have = new HashSet<>(existing);
            List<AclBinding> add = new ArrayList<>();
            for (AclBinding b : wanted) if (!have.contains(b)) add.add(b);
            List<AclBindingFilter> drop = new ArrayList<>();
            Set<AclBinding> want = new HashSet<>(wanted);
            for (AclBinding b : existing) {
                if (principals.contains(b.entry().principal()) && !want.contains(b)) drop.add(b.toFilter());
            }
            if (!add.isEmpty()) admin.createAcls(add).all().get(60, TimeUnit.SECONDS);
            if (!drop.isEmpty()) admin.deleteAcls(drop).all().get(60, TimeUnit.SECONDS);
            System.out.printf("%d principals (SCRAM-SHA-512), %d ACLs: %d added, %d removed%n",
                    users.size(), wanted.size(), add.size(), drop.size());
        }
    }

    static String password(Path file) throws Exception {
        List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        if (lines.isEmpty() || lines.get(0).isEmpty()) throw new IllegalArgumentException("empty password file " + file);
        return lines.get(0);
    }

    // Lines: <principal> <topic|group|cluster> <literal|prefixed> <name> <OPERATION[,OPERATION...]>
    static List<AclBinding> parse(Path file) throws Exception {
        List<AclBinding> out = new ArrayList<>();
        int n = 0;
        for (String raw : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            n++;
            String line = raw.replaceAll("#.*", "").trim();
            if (line.isEmpty()) continue;
            String[] f = line.split("\\s+");
            if (f.length != 5) throw new IllegalArgumentException(file + ":" + n + ": expected 5 fields, got: " + raw);
            ResourceType type = ResourceType.fromString(f[1].toUpperCase(Locale.ROOT));
            PatternType pattern = PatternType.fromString(f[2].toUpperCase(Locale.ROOT));
            if (type == ResourceType.UNKNOWN || pattern == PatternType.UNKNOWN) {
                throw new IllegalArgumentException(file + ":" + n + ": unknown resource type or pattern: " + raw);
            }
            for (String op : f[4].split(",")) {
                AclOperation operation = AclOperation.fromString(op.toUpperCase(Locale.ROOT));
                if (operation == AclOperation.UNKNOWN) throw new IllegalArgumentException(file + ":" + n + ": unknown operation " + op);
                out.add(new AclBinding(new ResourcePattern(type, f[3], pattern),
                        new AccessControlEntry("User:" + f[0], "*", operation, AclPermissionType.ALLOW)));
            }
        }
        return out;
    }
}

#!/usr/bin/env python3
"""Writes a Nessus v2 file of HOSTS hosts with ITEMS findings each, written from the format
(NessusClientData_v2 / Report / ReportHost / HostProperties / ReportItem), about 2 KB per
finding: python3 bench/gen_nessus.py OUT [HOSTS=1000] [ITEMS=100]. Prints its size."""
import os, sys

out = sys.argv[1]
hosts = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
items = int(sys.argv[3]) if len(sys.argv) > 3 else 100
filler = ("The remote service accepts connections encrypted with a protocol version that is "
          "deprecated; an attacker may exploit known weaknesses to decrypt traffic. ") * 10
with open(out, "w") as f:
    f.write('<?xml version="1.0" ?>\n<NessusClientData_v2>\n<Policy><policyName>Bench</policyName></Policy>\n')
    f.write('<Report name="Bench scan" xmlns:cm="http://www.nessus.org/cm">\n')
    for h in range(hosts):
        ip = f"10.{h // 65536 % 256}.{h // 256 % 256}.{h % 256}"
        f.write(f'<ReportHost name="{ip}"><HostProperties>\n'
                f'<tag name="HOST_END">Tue Nov  3 10:12:01 2026</tag>\n'
                f'<tag name="host-fqdn">host{h}.bench.example.org</tag>\n'
                f'<tag name="host-ip">{ip}</tag>\n</HostProperties>\n')
        for i in range(items):
            plugin = 100000 + i
            sev = 1 + (i % 4)
            f.write(f'<ReportItem port="{1000 + i}" svc_name="svc" protocol="tcp" severity="{sev}" '
                    f'pluginID="{plugin}" pluginName="Bench finding {plugin}" pluginFamily="General">\n'
                    f'<synopsis>Finding {plugin} on the remote host.</synopsis>\n'
                    f'<description>{filler}</description>\n'
                    f'<solution>Upgrade the affected package to the latest version.</solution>\n'
                    f'<risk_factor>Medium</risk_factor>\n<cvss3_base_score>6.5</cvss3_base_score>\n'
                    f'<cve>CVE-2024-{10000 + i}</cve>\n'
                    f'<plugin_output>Installed version : 1.{i}\nFixed version : 1.{i + 1}</plugin_output>\n'
                    '</ReportItem>\n')
        f.write('</ReportHost>\n')
    f.write('</Report>\n</NessusClientData_v2>\n')
print(os.path.getsize(out))

package protocol
import ("testing";"os")
func TestDbgTshark(t *testing.T){
	_, text2pcap := needTshark(t)
	_, descs := encodeAll(t, tsharkMessages(t))
	p := writePcap(t, text2pcap, descs)
	b,_ := os.ReadFile(p); os.WriteFile("/tmp/tsh/our.pcap", b, 0644)
	h := descs[4]; bad := append([]byte{}, h...); bad[23] = 11
	p = writePcap(t, text2pcap, [][]byte{bad})
	b,_ = os.ReadFile(p); os.WriteFile("/tmp/tsh/bad.pcap", b, 0644)
}

namespace AttnPortal.Inference.Text;

public static class TokenizerLoader
{
    public static ITokenizer Load(string dir) => LlavaTokenizer.Load(dir);
}
